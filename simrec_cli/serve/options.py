"""The settings of `simrec serve`: where it listens, how it batches, and the limits that protect it.

Kept free of FastAPI and torch so the command can validate its arguments before anything heavy is imported.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field
from pathlib import Path

from simrec_cli.errors import SimrecError

LOCALHOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_BATCH = 16
DEFAULT_MAX_WAIT_MS = 10.0
DEFAULT_QUEUE_SIZE = 64
DEFAULT_MAX_BODY_MB = 20.0
DEFAULT_MAX_PIXELS = 50_000_000  # a 48-megapixel phone photo fits; its RGB decode takes about 150 MB
DEFAULT_MAX_EXPRESSIONS = 32
DEFAULT_TIMEOUT_S = 30.0
# Open connections at once: far more than the requests a model answers in a request's time, and, with the files a
# server holds, within the usual limit of 1,024 open files a process (`ulimit -n`).
DEFAULT_MAX_CONNECTIONS = 512
DEFAULT_HEADER_TIMEOUT_S = 10.0  # a request's headers are a few hundred bytes: seconds even on a poor link
API_KEY_ENVIRONMENT = "SIMREC_API_KEY"
MIN_API_KEY_CHARACTERS = 16  # shorter tokens are guessable; `secrets.token_urlsafe()` gives 43
API_KEY_HINT = "make one with: openssl rand -hex 32"
MIN_IMAGE_SIDE = 8  # an image narrower than this holds too little to find anything in
COMPILE_BUCKET_STEP = 4  # compiled batch sizes 1, 4, 16, ...: a padded pass runs at most 4x its rows


@dataclass(frozen=True)
class ServeOptions:
    """Everything `simrec serve` is told; checked on construction so a bad value fails before the model loads."""

    model_path: Path
    host: str = LOCALHOST
    port: int = DEFAULT_PORT
    device: str = "auto"
    precision: str = "auto"
    runtime: str = "auto"
    max_batch: int = DEFAULT_MAX_BATCH
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS
    queue_size: int = DEFAULT_QUEUE_SIZE
    max_body_mb: float = DEFAULT_MAX_BODY_MB
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_expressions: int = DEFAULT_MAX_EXPRESSIONS
    timeout_s: float = DEFAULT_TIMEOUT_S
    allow_paths: bool = False
    workers: int = 1
    compile: bool = False
    api_key: str | None = field(default=None, repr=False)
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    def __post_init__(self) -> None:
        positive = {
            "--max-batch": self.max_batch,
            "--queue-size": self.queue_size,
            "--max-body-mb": self.max_body_mb,
            "--max-pixels": self.max_pixels,
            "--max-expressions": self.max_expressions,
            "--timeout-s": self.timeout_s,
            "--header-timeout-s": self.header_timeout_s,
            "--max-connections": self.max_connections,
            "--workers": self.workers,
        }
        for flag, value in [*positive.items(), ("--max-wait-ms", self.max_wait_ms)]:
            if not math.isfinite(value):  # NaN passes every comparison below; infinity would wait or grow forever
                raise SimrecError(f"{flag} {value} is not a finite number", f"give {flag} a number")
        for flag, value in positive.items():
            if value <= 0:
                raise SimrecError(f"{flag} {value} must be positive", f"give {flag} a value above 0")
        if self.max_wait_ms < 0:
            raise SimrecError(f"--max-wait-ms {self.max_wait_ms} is negative", "use 0 to answer without waiting")
        if not 0 <= self.port <= 65535:
            raise SimrecError(f"--port {self.port} is not a TCP port", "use 1-65535, or 0 for any free port")
        if self.workers > 1 and self.port == 0:
            raise SimrecError("--workers needs a fixed --port", "give a port, e.g. --port 8000")
        if self.api_key is not None:
            _check_api_key(self.api_key)
        if self.max_pixels < MIN_IMAGE_SIDE * MIN_IMAGE_SIDE:
            raise SimrecError(f"--max-pixels {self.max_pixels} is too small", f"allow at least {MIN_IMAGE_SIDE**2}")
        if self.model_path.is_dir():
            raise SimrecError(
                f"model {self.model_path} is a folder", f"give a file in it, e.g. {self.model_path / 'best.pth'}"
            )
        if not self.model_path.is_file():
            raise SimrecError(
                f"model {self.model_path} does not exist",
                "give a best.pth from simrec train, or an .onnx or .xml from simrec export",
            )
        if self.compile and (self.is_exported or self.runtime not in ("auto", "torch")):
            raise SimrecError(
                "--compile applies to a checkpoint in PyTorch; ONNX Runtime and OpenVINO optimize a model as it loads",
                "leave out --compile, or serve the .pth checkpoint with --runtime torch",
            )

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def compile_batch_sizes(self) -> tuple[int, ...]:
        """The batch sizes `--compile` builds a graph for: 1, 4, 16, ... below --max-batch, and --max-batch itself.

        Each size costs a compile at start-up (about 35 s for the default SimREC at 416 on a 2-core CPU), and a pass
        runs at the next size up, so few sizes that grow by a constant factor bound both the start-up and the
        padding. Empty without --compile."""
        if not self.compile:
            return ()
        sizes = [1]
        while sizes[-1] * COMPILE_BUCKET_STEP < self.max_batch:
            sizes.append(sizes[-1] * COMPILE_BUCKET_STEP)
        return tuple(sorted({*sizes, self.max_batch}))

    @property
    def is_exported(self) -> bool:
        """An .onnx or OpenVINO .xml file from `simrec export` rather than a checkpoint."""
        return self.model_path.suffix.lower() in (".onnx", ".xml")

    def url(self, port: int | None = None) -> str:
        """The address to open in a browser (a wildcard bind is reached through localhost)."""
        host = self.host if self.host not in ("0.0.0.0", "::") else "localhost"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port if port is None else port}/"

    @property
    def listens_beyond_this_machine(self) -> bool:
        """True when the bind address is reachable from other machines (anything but a loopback address)."""
        if self.host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return True


def _check_api_key(key: str) -> None:
    """A token travels in an HTTP header: visible ASCII only, and long enough not to be guessed."""
    source = f"--api-key (or {API_KEY_ENVIRONMENT})"
    if any(not "!" <= character <= "~" for character in key):
        raise SimrecError(f"{source} must be printable ASCII without spaces", API_KEY_HINT)
    if len(key) < MIN_API_KEY_CHARACTERS:
        raise SimrecError(
            f"{source} has {len(key)} characters; a token needs at least {MIN_API_KEY_CHARACTERS} not to be guessed",
            API_KEY_HINT,
        )
