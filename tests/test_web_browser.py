"""The exported web page in a real Chromium, opened from file:// with every other request refused:
the same probabilities as the app for the same pixels, the same answers from JPEG files, Korean,
and the live camera (Chromium's fake camera playing a clip of a test image)."""

from __future__ import annotations

import numpy as np
import pytest
from camera_clip import write_y4m
from conftest import make_image, COLOURS
from test_e2e_browser import ARTIFACTS, CHROMIUM

from tl_core.predict import Predictor
from tl_core.serving import pixels

pytestmark = [pytest.mark.browser, pytest.mark.slow]
FLAGS = ["--disable-gpu", "--disable-quic", "--disable-sync", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]


@pytest.fixture()
def web(web_export):
    if not CHROMIUM:
        pytest.skip("chromium is not installed") if not __import__("os").environ.get("TL_REQUIRE_BROWSER") else \
            pytest.fail("chromium is not installed; browser tests are required in CI")
    return web_export[0]


def open_offline(p, folder, extra_args=(), camera=False):
    """The page from file:// in a fresh Chromium; any request that is not file: is aborted and recorded."""
    browser = p.chromium.launch(executable_path=CHROMIUM, args=[*FLAGS, *extra_args])
    context = browser.new_context(viewport={"width": 1100, "height": 1300})
    if camera:
        context.grant_permissions(["camera"])
    refused: list[str] = []

    def route(r):
        if r.request.url.startswith("file:"):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((folder / "index.html").as_uri())
    page.wait_for_function("document.body.dataset.ready === '1' || "
                           "document.getElementById('status').dataset.state === 'failed'", timeout=180_000)
    assert page.get_attribute("#status", "data-state") == "ready", page.text_content("#status")
    return browser, page, refused, errors


def test_page_offline_predicts_like_the_app(web, trained_run, image_folder):
    from playwright.sync_api import sync_playwright

    app = Predictor.from_run(trained_run.path, device="cpu")
    photos = sorted(image_folder.rglob("*.jpg"))  # all 36: the test split alone is 6 here
    with sync_playwright() as p:
        browser, page, refused, errors = open_offline(p, web)
        try:
            # 1. The same uint8 pixels: the page's probabilities equal the app's within 1e-4.
            views = np.stack([pixels(f, app.pre) for f in photos[:12]])
            got = np.array(page.evaluate("async ([a, n]) => await tl.classifyPixels(new Uint8Array(a), n)",
                                         [views.ravel().tolist(), len(views)]))
            want = app.probs(photos[:12]).numpy()
            assert np.abs(got - want).max() <= 1e-4
            # 2. JPEG files end to end (the browser decodes and resizes): top-1 agreement with the app.
            page.set_input_files("#files", [str(f) for f in photos])
            page.wait_for_function(f"document.querySelectorAll('.result[data-top1]').length === {len(photos)}",
                                   timeout=120_000)
            cards = page.evaluate("Array.from(document.querySelectorAll('.result')).map("
                                  "c => [c.dataset.file, JSON.parse(c.dataset.probs)])")
            by_name = {name: np.array(pr) for name, pr in cards}
            page_probs = np.stack([by_name[f.name] for f in photos])
            app_probs = app.probs(photos).numpy()
            agree = float((page_probs.argmax(1) == app_probs.argmax(1)).mean())
            print(f"JPEG top-1 agreement {agree:.3f}, largest probability difference "
                  f"{np.abs(page_probs - app_probs).max():.2e}")
            assert agree >= 0.99
            assert page.locator(".result .verdict").first.text_content()
            page.screenshot(path=str(ARTIFACTS / "web-export-en.png"), full_page=True)
            page.click("button[data-lang=ko]")
            assert "기기" in page.text_content(".privacy") and "이 모델에 대해" in page.text_content(".card")
            page.screenshot(path=str(ARTIFACTS / "web-export-ko.png"), full_page=True)
            assert not refused and not errors, (refused, errors)
        finally:
            browser.close()


def test_live_camera_on_the_page_shows_the_class(web, tmp_path):
    from playwright.sync_api import sync_playwright

    photo = tmp_path / "red.png"
    make_image(COLOURS["red"], 4242, size=480).save(photo)
    clip = write_y4m(tmp_path / "red.y4m", [photo], seconds_each=2.0)
    args = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}"]
    with sync_playwright() as p:
        browser, page, refused, errors = open_offline(p, web, args, camera=True)
        try:
            page.click("#tab-camera")
            page.click("#camera-start")
            page.wait_for_function("document.getElementById('live-verdict').dataset.top1 === 'red'", timeout=90_000)
            assert "red" in page.text_content("#live-bars") and "per second" in page.text_content("#live-speed")
            page.screenshot(path=str(ARTIFACTS / "web-export-camera.png"), full_page=True)
            assert not refused and not errors, (refused, errors)
        finally:
            browser.close()
