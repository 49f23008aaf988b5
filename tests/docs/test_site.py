"""The documentation site: it builds strictly and offline, and its pages work in headless Chromium.

`mkdocs build --strict` fails on a broken link or anchor, a page outside the nav, a missing picture and any
mkdocstrings warning. The built site is served from 127.0.0.1 (Material's search runs in a web worker, which a
file:// page may not start), and every request the pages make must stay there: no fonts, scripts or styles from
the network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.browser import browser_page

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 300
SEARCH_TIMEOUT_MS = 30_000
PAGES = ["", "reference/settings/", "reference/http-api/", "python-api/"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("site")
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)]
    environment = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(build, cwd=ROOT, capture_output=True, text=True, env=environment, timeout=BUILD_TIMEOUT_S)
    assert result.returncode == 0, "mkdocs build --strict failed (the docs extra: pip install -e '.[docs]'):\n" + (
        result.stdout + result.stderr
    )
    return folder


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """The test's output stays clean: requests are checked in the browser, not read from a log."""


@pytest.fixture(scope="module")
def site_url(site: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_the_site_has_every_page_picture_and_the_search_index(site: Path) -> None:
    for page in PAGES:
        assert (site / page / "index.html").is_file(), page
    for picture in ("demo-predict.jpg", "eval-report.jpg", "serve-page.png", "reference/openapi.json"):
        assert (site / picture).stat().st_size > 0
    assert "Predictor.load" in (site / "python-api/index.html").read_text(encoding="utf-8")
    index = json.loads((site / "search/search_index.json").read_text(encoding="utf-8"))
    assert any(
        "train.base_lr" in entry["text"]
        for entry in index["docs"]
        if entry["location"].startswith("reference/settings/")
    )


def test_pages_load_without_errors_or_requests_beyond_the_site(site_url: str) -> None:
    requested: list[str] = []
    with browser_page() as (page, problems):
        page.on("request", lambda request: requested.append(request.url))
        for path in PAGES:
            page.goto(site_url + path)
            page.wait_for_load_state("networkidle")
            assert page.locator("article h1").count() == 1, path
        assert problems.all() == []
    assert requested and [url for url in requested if not url.startswith(site_url)] == []


def test_search_finds_the_settings_page_by_a_key(site_url: str) -> None:
    with browser_page() as (page, problems):
        page.goto(site_url)
        page.click("input.md-search__input")
        page.keyboard.type("train.base_lr")
        page.wait_for_selector(".md-search-result__item", timeout=SEARCH_TIMEOUT_MS)
        links = page.eval_on_selector_all(".md-search-result__item a", "links => links.map(link => link.href)")
        assert any("/reference/settings/" in link for link in links), links
        assert problems.all() == []
