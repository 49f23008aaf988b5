"""The browser helper itself: it loads a local page and records what went wrong on it."""

from __future__ import annotations

from pathlib import Path

from tests.browser import browser_page


def test_browser_page_records_missing_images_and_console_errors(tmp_path: Path) -> None:
    (tmp_path / "ok.html").write_text("<html><body><p id='x'>fine</p></body></html>")
    (tmp_path / "bad.html").write_text(
        "<html><body><img src='gone.png'><script>console.error('broken page')</script></body></html>"
    )
    with browser_page() as (page, problems):
        page.goto((tmp_path / "ok.html").as_uri())
        assert page.inner_text("#x") == "fine"
        assert problems.all() == []
        page.goto((tmp_path / "bad.html").as_uri())
        page.wait_for_load_state("load")
        assert "broken page" in problems.console_errors
        assert any("gone.png" in failure for failure in problems.failed_requests)
