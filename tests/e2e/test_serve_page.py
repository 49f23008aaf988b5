"""The served page in headless Chromium: upload the demo image, ask for "the big red circle", and check that
the box drawn on the page is the API's answer; bad input shows a readable message; the API docs render offline.

SIMREC_SERVE_CHECKPOINT serves another checkpoint (the demo's runs/demo/best.pth, say) and SIMREC_SCREENSHOT
names where to keep the page's screenshot (the docs' picture, docs/serve-page.png, is made that way).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from simrec_cli.data.synthetic import DEMO_EXPRESSION, demo_jpeg
from tests.browser import browser_page
from tests.serving import ServerProcess, running_server
from tests.unit.predict.checkpoints import tiny_settings, write_checkpoint

ANSWER_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def server(trained_run: Path) -> Iterator[ServerProcess]:
    checkpoint = Path(os.environ.get("SIMREC_SERVE_CHECKPOINT") or trained_run / "best.pth")
    with running_server(checkpoint, "--device", "cpu") as process:
        yield process


@pytest.fixture(scope="module")
def demo_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("page") / "demo.jpg"
    path.write_bytes(demo_jpeg())
    return path


def test_uploaded_demo_image_gets_the_apis_box_drawn(server: ServerProcess, demo_image: Path, tmp_path: Path) -> None:
    with browser_page(width=1100, height=760) as (page, problems):
        page.goto(server.url)
        page.wait_for_function("!document.getElementById('model-info').textContent.startsWith('loading')")
        page.set_input_files("#file-input", str(demo_image))
        page.wait_for_selector("#stage:not([hidden])")
        page.fill("#expressions", DEMO_EXPRESSION)
        page.click("#find-button")
        page.wait_for_selector("body[data-state=answered]", timeout=ANSWER_TIMEOUT_MS)
        box = page.locator("rect.answer-box")
        assert box.count() == 1
        drawn = {name: float(box.get_attribute(name)) for name in ("x", "y", "width", "height")}
        data_box = json.loads(box.get_attribute("data-box"))
        listed = page.inner_text("#answers")
        page.screenshot(path=str(tmp_path / "serve-page.png"))
        assert problems.all() == []
    files = {"image": ("demo.jpg", demo_image.read_bytes(), "image/jpeg")}
    api = httpx.post(f"{server.url}predict", files=files, data={"expression": DEMO_EXPRESSION}, timeout=60).json()
    x1, y1, x2, y2 = api["results"][0]["box"]
    assert data_box == [x1, y1, x2, y2]
    assert drawn == pytest.approx({"x": x1, "y": y1, "width": x2 - x1, "height": y2 - y1}, abs=1e-6)
    assert DEMO_EXPRESSION in listed and f"score {api['results'][0]['score']:.3f}" in listed
    if os.environ.get("SIMREC_SCREENSHOT"):
        shutil.copyfile(tmp_path / "serve-page.png", os.environ["SIMREC_SCREENSHOT"])


def test_bad_input_shows_a_readable_message(server: ServerProcess, tmp_path: Path) -> None:
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("shopping list: eggs, milk")
    with browser_page() as (page, problems):
        page.goto(server.url)
        page.click("#find-button")
        assert "Choose an image first" in page.inner_text("#message")
        page.set_input_files("#file-input", str(not_an_image))
        page.wait_for_selector("#message:not([hidden])")
        page.fill("#expressions", " \n  ")
        page.click("#find-button")
        assert "Type at least one expression" in page.inner_text("#message")
        page.fill("#expressions", DEMO_EXPRESSION)
        page.click("#find-button")
        page.wait_for_selector("body[data-state=error]", timeout=ANSWER_TIMEOUT_MS)
        message = page.inner_text("#message")
        assert "notes.jpg is not an image" in message and "Traceback" not in message
        assert page.locator("rect.answer-box").count() == 0
        assert problems.page_errors == []
        assert all("415" in failure for failure in problems.failed_requests), problems.failed_requests


def test_masks_are_drawn_each_in_its_own_colour(demo_image: Path, tmp_path: Path) -> None:
    checkpoint = write_checkpoint(tmp_path / "mcn.pth", tiny_settings("model.name=mcn"))
    with running_server(checkpoint, "--device", "cpu") as mask_server, browser_page() as (page, problems):
        page.goto(mask_server.url)
        page.wait_for_selector("#masks-option:not([hidden])")
        page.set_input_files("#file-input", str(demo_image))
        page.fill("#expressions", "the big red circle\nthe small blue square")
        page.click("#find-button")
        page.wait_for_selector("body[data-state=answered]", timeout=ANSWER_TIMEOUT_MS)
        assert page.locator("image.answer-mask").count() == 2
        colours = [page.locator("rect.answer-box").nth(k).get_attribute("stroke") for k in range(2)]
        assert len(set(colours)) == 2
        assert "mask" in page.inner_text("#answers")
        assert problems.all() == []


def test_api_docs_render_offline(server: ServerProcess) -> None:
    with browser_page() as (page, problems):
        page.goto(f"{server.url}docs")
        page.wait_for_selector("section.operation")
        text = page.inner_text("#operations")
        assert "/predict" in text and "multipart/form-data" in text and "ErrorBody" in text
        assert "image_path" in text and "/metrics" in text
        assert problems.all() == []


def test_a_server_with_a_token_asks_the_browser_for_it(demo_image: Path, tmp_path: Path) -> None:
    """With --api-key the page, its files and its requests need the token; a browser asks for it as a password,
    and once given, the page answers as it does without one."""
    checkpoint = write_checkpoint(tmp_path / "tiny.pth", tiny_settings())
    token = "page-token-0123456789abcdef"
    with running_server(checkpoint, "--device", "cpu", env={"SIMREC_API_KEY": token}) as guarded:
        assert httpx.get(guarded.url, timeout=10).status_code == 401
        with browser_page(password=token) as (page, problems):
            page.goto(guarded.url)
            page.wait_for_function("!document.getElementById('model-info').textContent.startsWith('loading')")
            assert "simrec trained on synthetic" in page.inner_text("#model-info")
            page.set_input_files("#file-input", str(demo_image))
            page.fill("#expressions", DEMO_EXPRESSION)
            page.click("#find-button")
            page.wait_for_selector("body[data-state=answered]", timeout=ANSWER_TIMEOUT_MS)
            assert page.locator("rect.answer-box").count() == 1
            assert problems.all() == []
