"""What a SLURM allocation says about the launch: node count, this node's rank, processes per node, the master.

Inside `srun` (one task per node) or an sbatch script, SLURM describes the job in environment variables. The node
list comes in SLURM's compact form (`gpu[01-04,07],cpu3`); its first host is node 0, the master of the run.
`scontrol show hostnames` expands it where SLURM's tools are installed; elsewhere (and as a fallback) the
parser below does, so the plan can be derived and tested without a cluster.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from simrec_cli.errors import SimrecError, quoted
from simrec_cli.schemas.slurm import HOST, SLURM_ENVIRONMENT, SlurmVariables

DEFAULT_PORT_BASE = 20000  # the master port of a SLURM job: 20000 + job id mod 10000, so jobs sharing node 0 differ
_RANGE = re.compile(r"([0-9]{1,9})(?:-([0-9]{1,9}))?")  # node numbers: no real cluster needs more digits


@dataclass(frozen=True)
class SlurmValue:
    """One value read from the allocation, with the variable it came from (named in conflict messages)."""

    value: int | str
    source: str

    def __str__(self) -> str:
        return f"{self.source}={self.value}"


@dataclass(frozen=True)
class SlurmAllocation:
    """The launch facts of the SLURM job this process runs in."""

    nnodes: SlurmValue
    node_rank: SlurmValue
    nproc_per_node: SlurmValue | None  # None when SLURM names neither GPUs nor tasks per node
    master_addr: str
    master_port: int


def _split_top_level(text: str, what: str) -> list[str]:
    """`text` cut at the commas that are outside brackets."""
    parts, depth, start = [], 0, 0
    for position, char in enumerate(text):
        if char == "[":
            depth += 1
            if depth > 1:
                raise SimrecError(f"{what}: nested brackets in {quoted(text)}", "check the SLURM node list")
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise SimrecError(f"{what}: ']' without '[' in {quoted(text)}", "check the SLURM node list")
        elif char == "," and depth == 0:
            parts.append(text[start:position])
            start = position + 1
    if depth != 0:
        raise SimrecError(f"{what}: '[' without ']' in {quoted(text)}", "check the SLURM node list")
    parts.append(text[start:])
    return parts


def _ranges(body: str, text: str, what: str) -> list[tuple[str, str]]:
    """`01-03,07` -> (01, 03), (07, 07), each checked: numbers only, none running backwards."""
    ranges = []
    for item in body.split(","):
        match = _RANGE.fullmatch(item.strip())
        if match is None:
            problem = f"{quoted(f'[{body}]')} in {quoted(text)} is not a list of numbers and ranges"
            raise SimrecError(f"{what}: {problem}", "check the list")
        low, high = match.group(1), match.group(2) or match.group(1)
        if int(high) < int(low):
            raise SimrecError(f"{what}: the range {quoted(item)} in {quoted(text)} runs backwards", "check the list")
        ranges.append((low, high))
    return ranges


def _expand_ranges(body: str, text: str, what: str) -> list[str]:
    """`01-03,07` -> 01, 02, 03, 07: a range keeps the width of its first number (zero padding)."""
    return [str(number).zfill(len(low)) for low, high in _ranges(body, text, what)
            for number in range(int(low), int(high) + 1)]  # fmt: skip


def _parts(text: str, what: str) -> list[list[str]]:
    """Each host pattern of a node list as its pieces: literal, bracket body, literal, ..., literal."""
    parts = []
    for part in _split_top_level(text.strip(), what):
        if not part:
            raise SimrecError(f"{what}: empty host name in {quoted(text)}", "check the SLURM node list")
        parts.append(re.split(r"\[([^\]]*)\]", part))
    return parts


def expand_nodelist(text: str, what: str = "node list") -> list[str]:
    """The host names of a compact SLURM node list, in SLURM's order.

    `gpu[01-04,07],cpu3` -> gpu01 gpu02 gpu03 gpu04 gpu07 cpu3; `rack[1-2]-n[1-2]` -> rack1-n1 rack1-n2 rack2-n1
    rack2-n2 (the first bracket changes slowest).
    """
    hosts: list[str] = []
    for pieces in _parts(text, what):
        choices = [[piece] if index % 2 == 0 else _expand_ranges(piece, text, what) for index, piece in
                   enumerate(pieces)]  # fmt: skip
        hosts.extend("".join(combination) for combination in itertools.product(*choices))
    return hosts


def _first_listed_host(text: str, what: str) -> str:
    """The first host of a node list, the whole list checked but never expanded (a typo such as
    `n[1-100000000]` would otherwise build a hundred million names)."""
    parts = _parts(text, what)
    for pieces in parts:
        for index in range(1, len(pieces), 2):
            _ranges(pieces[index], text, what)
    first = parts[0]
    return "".join(piece if index % 2 == 0 else _ranges(piece, text, what)[0][0] for index, piece in
                   enumerate(first))  # fmt: skip


def first_host(nodelist: str, what: str) -> str:
    """Node 0 of a compact node list: `scontrol show hostnames` where it exists, else (or if it fails) our parser."""
    if shutil.which("scontrol"):
        try:
            shown = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                                   timeout=30, check=True)  # fmt: skip
            names = shown.stdout.split()
            if names:
                return names[0]
        except (OSError, subprocess.SubprocessError):
            pass  # a broken or unreachable SLURM controller: the list itself says the same
    return _first_listed_host(nodelist, what)


def _read(environ: Mapping[str, str], use_gpus: bool) -> SlurmVariables:
    """The SLURM variables simrec uses that are set (and not blank), each checked by its schema."""
    names = [name for name in SlurmVariables.__annotations__ if use_gpus or name != "SLURM_GPUS_ON_NODE"]
    given = {name: environ[name].strip() for name in names if environ.get(name, "").strip()}
    return SLURM_ENVIRONMENT.check(given, "this SLURM job")


def _first(variables: SlurmVariables, *names: str) -> SlurmValue | None:
    """The value of the first of `names` that is set, with its name."""
    for name in names:
        if name in variables:
            return SlurmValue(variables[name], name)  # type: ignore[literal-required]
    return None


def slurm_allocation(environ: Mapping[str, str], use_gpus: bool = True) -> SlurmAllocation | None:
    """The allocation this process runs in, or None outside SLURM (no SLURM_JOB_ID).

    Processes per node: the node's GPUs (SLURM_GPUS_ON_NODE) when training on GPUs, else SLURM_NTASKS_PER_NODE.
    """
    if not environ.get("SLURM_JOB_ID", "").strip():
        return None
    variables = _read(environ, use_gpus)
    nnodes = _first(variables, "SLURM_JOB_NUM_NODES", "SLURM_NNODES") or SlurmValue(1, "SLURM_JOB_NUM_NODES")
    node_rank = _first(variables, "SLURM_NODEID") or SlurmValue(0, "SLURM_NODEID")
    gpus = _first(variables, "SLURM_GPUS_ON_NODE")
    tasks = _first(variables, "SLURM_NTASKS_PER_NODE")
    nproc = gpus if gpus is not None and int(gpus.value) > 0 else tasks
    step_tasks, step_nodes = _first(variables, "SLURM_STEP_NUM_TASKS"), _first(variables, "SLURM_STEP_NUM_NODES")
    if step_tasks is not None and step_nodes is not None and int(step_tasks.value) > int(step_nodes.value):
        raise SimrecError(
            f"srun started {step_tasks.value} tasks on {step_nodes.value} node(s); simrec starts the processes of a "
            "node itself (one per GPU, through torchrun)",
            "run one task per node: srun --ntasks-per-node=1 simrec train ...",
        )
    listed = _first(variables, "SLURM_JOB_NODELIST", "SLURM_NODELIST")
    if listed is None:
        raise SimrecError("SLURM_JOB_ID is set but SLURM_JOB_NODELIST is not", "give --master-addr, or run in srun")
    master = HOST.check(first_host(str(listed.value), listed.source), f"the first host of {listed.source}")
    return SlurmAllocation(
        nnodes=nnodes,
        node_rank=node_rank,
        nproc_per_node=nproc,
        master_addr=master,
        master_port=DEFAULT_PORT_BASE + variables["SLURM_JOB_ID"] % 10000,
    )
