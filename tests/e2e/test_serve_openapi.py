"""Schemathesis against a real `simrec serve` process on 127.0.0.1: requests generated from the server's own
/openapi.json, both schema-valid ones and ones that break the schema, and every answer held to that schema.

No answer may be a 5xx; every status code, content type, documented header and body must be what the schema says
for that operation; a request that breaks the schema must be refused. The server runs with an API token and
`--allow-paths` (so both are fuzzed too), in a folder of its own, with small limits so that no example costs much.
`positive_data_acceptance` is left out: a schema cannot say "the bytes of a decodable image" or "an expression with
a word in it", so schema-valid requests are refused with 415 and 422 as they should be.

The examples follow the suite's Hypothesis profile (tests/fuzzing.py): 20 per operation and generation mode in
`make test`, 100 in `make test-all` (operations without inputs get 3: they vary only in what Hypothesis cannot
change).
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzzing import examples
from tests.serving import ServerProcess, running_server
from tests.unit.predict.checkpoints import tiny_settings, write_checkpoint

TOKEN = "fuzzing-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES_SHARE = 0.5  # of the profile's examples, per operation and generation mode
FEW_EXAMPLES = 3  # for operations without inputs
# From this many examples on, some generated request is all but sure to hold the real image and a word (about one
# in eight does), so its answer, a 200, is held to the schema too.
REACHES_THE_MODEL = 100
REQUEST_TIMEOUT_S = 30
LIMITS = ("--max-body-mb", "1", "--max-expressions", "4", "--max-pixels", "1000000", "--timeout-s", "10")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("fuzzed-server")
    checkpoint = write_checkpoint(folder / "tiny.pth", tiny_settings())
    options = ("--device", "cpu", "--precision", "fp32", "--allow-paths", *LIMITS)
    with running_server(checkpoint, *options, cwd=folder, env={"SIMREC_API_KEY": TOKEN}) as running:
        yield running
        assert running.stop() == 0, running.log
    assert "Traceback" not in running.log, running.log


def small_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


REAL_IMAGE = {"multipart/form-data": small_png(), "application/json": base64.b64encode(small_png()).decode()}


def with_real_image(case: schemathesis.Case) -> None:
    """Random bytes are never an image: put a real one in, so that the generated expressions and mask formats
    reach the model and its answer is held to the schema of a 200."""
    if isinstance(case.body, dict) and "image" in case.body and case.media_type in REAL_IMAGE:
        case.body["image"] = REAL_IMAGE[case.media_type]


def fuzz(server: ServerProcess, examples: int) -> dict[str, int]:
    """Send up to `examples` generated requests per operation and mode (operations without inputs get a few: they
    vary only in what Hypothesis cannot change); the number of requests sent, per operation."""
    api = schemathesis.openapi.from_url(f"{server.url}openapi.json", headers=AUTH, timeout=REQUEST_TIMEOUT_S)
    sent: dict[str, int] = {}
    for result in api.get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if operation.body else [GenerationMode.POSITIVE]
        for mode in modes:
            exchanges(operation, mode, examples if operation.body else min(examples, FEW_EXAMPLES), sent)
    return sent


def exchanges(operation: schemathesis.APIOperation, mode: GenerationMode, examples: int, sent: dict[str, int]) -> None:
    """Up to `examples` requests of `operation` generated in `mode`, each answer validated; counted in `sent`."""

    @given(case=operation.as_strategy(generation_mode=mode), real_image=st.booleans())
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def exchange(case: schemathesis.Case, real_image: bool) -> None:
        if real_image and mode == GenerationMode.POSITIVE:
            with_real_image(case)
        response = case.call(headers=AUTH, timeout=REQUEST_TIMEOUT_S)
        sent[operation.label] = sent.get(operation.label, 0) + 1
        case.validate_response(response, checks=CHECKS, headers=AUTH)

    exchange()


def test_every_answer_matches_the_servers_own_schema(server: ServerProcess) -> None:
    count = examples(EXAMPLES_SHARE).max_examples
    started = time.monotonic()
    sent = fuzz(server, count)
    elapsed = time.monotonic() - started
    assert set(sent) == {"POST /predict", "GET /health", "GET /info", "GET /metrics", "GET /demo.jpg"}, sent
    assert sent["POST /predict"] >= count, sent  # both modes ran
    print(f"schemathesis: {sum(sent.values())} requests in {elapsed:.1f} s ({sent})")
    if count >= REACHES_THE_MODEL:
        metrics = httpx.get(f"{server.url}metrics", headers=AUTH, timeout=10).text
        assert 'simrec_requests_total{path="/predict",status="200"}' in metrics


def test_the_schema_documents_the_token_and_every_refusal(server: ServerProcess) -> None:
    openapi = httpx.get(f"{server.url}openapi.json", headers=AUTH, timeout=10).json()
    predict = openapi["paths"]["/predict"]["post"]
    assert {"200", "400", "401", "403", "408", "413", "415", "422", "503", "504"} == set(predict["responses"])
    assert "WWW-Authenticate" in predict["responses"]["401"]["headers"]
    assert "Retry-After" in predict["responses"]["503"]["headers"]
    assert set(openapi["paths"]["/health"]["get"]["responses"]) == {"200", "503"}
    assert "security" not in openapi["paths"]["/health"]["get"]
    assert all("401" in openapi["paths"][path]["get"]["responses"] for path in ("/info", "/metrics", "/demo.jpg"))
    assert openapi["components"]["securitySchemes"]["token"] == {"type": "http", "scheme": "bearer"}


def test_a_request_without_the_token_is_refused_everywhere_but_health(server: ServerProcess) -> None:
    for path in ("/", "/info", "/metrics", "/openapi.json", "/docs", "/demo.jpg", "/static/app.js"):
        refused = httpx.get(f"{server.url}{path.lstrip('/')}", timeout=10)
        assert refused.status_code == 401, (path, refused.text)
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.json()["error"] == "unauthorized"
    wrong = httpx.get(f"{server.url}info", headers={"Authorization": f"Bearer {TOKEN[:-1]}x"}, timeout=10)
    assert wrong.status_code == 401 and "wrong" in wrong.json()["detail"]
    assert httpx.get(f"{server.url}health", timeout=10).status_code == 200
    basic = httpx.get(f"{server.url}info", auth=("anyone", TOKEN), timeout=10)
    assert basic.status_code == 200 and basic.json()["file"] == "tiny.pth"  # the file's name, not where it is
    refused = httpx.post(f"{server.url}predict", json={"image": "", "expression": "x"}, timeout=10)
    assert refused.status_code == 401
