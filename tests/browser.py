"""Headless Chromium for the tests of pages (eval reports, the served page).

Pages are tested in a real browser: Debian's Chromium, driven through Playwright's Python API with the
system binary (Playwright's own browser download needs a network). Where neither is available the tests
that need it are skipped with the reason; `make test` installs Chromium when it is missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

# Chromium on a machine without network: no background connections, no sandbox (tests may run as root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The system Chromium binary, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@dataclass
class PageProblems:
    """What a page did wrong while it was open: console errors, uncaught exceptions, failed requests."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def all(self) -> list[str]:
        return self.console_errors + self.page_errors + self.failed_requests


@contextmanager
def browser_page(
    width: int = 1280, height: int = 900, password: str | None = None
) -> Iterator[tuple[object, PageProblems]]:
    """Yield a fresh Playwright page and the problems it records; skip the test where no browser runs. With
    `password`, the page answers a login the site asks for with it (as a person would type it)."""
    binary = chromium_path()
    if binary is None:
        pytest.skip("no Chromium on this machine (make test installs Debian's chromium package)")
    reason = "playwright is not installed (pip install -e '.[dev]')"
    sync_api = pytest.importorskip("playwright.sync_api", reason=reason)
    problems = PageProblems()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, args=CHROMIUM_ARGS)
        try:
            credentials = {"username": "simrec", "password": password} if password else None
            page = browser.new_page(viewport={"width": width, "height": height}, http_credentials=credentials)
            page.on("console", lambda message: message.type == "error" and problems.console_errors.append(message.text))
            page.on("pageerror", lambda error: problems.page_errors.append(str(error)))
            page.on("requestfailed", lambda request: problems.failed_requests.append(f"failed: {request.url}"))
            page.on(
                "response",
                lambda response: (
                    response.status >= 400 and problems.failed_requests.append(f"{response.status}: {response.url}")
                ),
            )
            yield page, problems
        finally:
            browser.close()
