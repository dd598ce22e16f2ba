"""End-to-end in a real headless Chromium: sample data -> plan -> train -> evaluate -> predict.

Screenshots of every step go to test-artifacts/. CI sets TL_REQUIRE_BROWSER=1: there a missing
Chromium fails the suite instead of skipping it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import threading
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from conftest import ROOT, free_port, held, settled, start_streamlit, stop_group
from tl_core.runs import RunDir

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    # Every run of this server holds after its first epoch until the test releases (or stops) it:
    # the tests watch a live run at a named point, however fast the machine is.
    proc, url = start_streamlit(free_port(), {"TL_RUNS_DIR": str(tmp / "runs"), "TL_DATA_ROOT": str(tmp / "data"),
                                              "TL_CACHE_DIR": str(tmp / "cache"), "TL_TEST_HOLD_AFTER_EPOCH": "1"})
    yield url, tmp
    stop_group(proc)
    for pid_file in (tmp / "runs").glob("*/status.json"):  # trainers the tests started
        import json

        pid = json.loads(pid_file.read_text()).get("pid")
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        if os.environ.get("TL_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (apt-get install chromium); browser tests are required in CI")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--disable-gpu", "--disable-quic", "--disable-sync", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        yield b
        b.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def goto_page(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    # A deadline, not a speed: a page that loads a run on a loaded machine may take a while.
    page.get_by_role("heading", name=re.compile(re.escape(title.split(" · ")[1]))).first.wait_for(timeout=90_000)


def held_run(tmp, run_id: str) -> RunDir:
    run = RunDir(tmp / "runs" / run_id)
    held(run, 1)
    return run


@contextlib.contextmanager
def releasing_every_hold(runs_dir: Path):
    """Release every run that holds (a lab's scenario runs), in a thread, while the block runs."""
    done = threading.Event()

    def loop():
        while not done.wait(0.2):
            for status in runs_dir.glob("*/status.json"):
                if (json.loads(status.read_text() or "{}") or {}).get("held"):
                    (status.parent / "release").touch()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def epochs_shown(page) -> int:
    """Epochs finished so far, read from the one-line summary under the live chart."""
    text = " ".join(page.get_by_text(re.compile(r"at epoch \d+ of \d+")).first.inner_text().split())
    found = re.search(r"at epoch \d+ of (\d+)", text)
    assert found, text
    return int(found.group(1))


def use_sample_data(page) -> None:
    goto_page(page, "2 · Data")
    page.get_by_role("button", name="Use the sample data").click()
    page.get_by_text("10 classes, 200 usable images").first.wait_for(timeout=60_000)
    page.get_by_text("Ready to train").first.wait_for()


def set_number(page, label: str, value: int) -> None:
    box = page.get_by_role("spinbutton", name=label)  # not its help button, which carries the label too
    box.fill(str(value))
    box.press("Enter")


def set_epochs_and_light_augmentation(page, epochs: int) -> None:
    """Light augmentation: the backbone runs every epoch, slow enough to watch the chart grow."""
    goto_page(page, "3 · Model")
    set_number(page, "Epochs (0 = automatic)", epochs)
    page.locator('[data-testid="stSelectbox"]', has_text="Augmentation").click()
    page.get_by_role("option", name="light").click()
    expect(page.get_by_role("combobox", name=re.compile("Augmentation"))).to_have_value("light")
    settled(page)


def test_whole_flow_in_a_real_browser(server, browser):
    url, tmp = server
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    page.goto(url)
    page.get_by_text("Scenario 1: Freeze the whole pretrained network").first.wait_for(timeout=60_000)
    shot(page, "01-plan")

    use_sample_data(page)
    page.get_by_text("Examples per class").first.wait_for()
    page.locator('[data-testid="stImage"]').first.wait_for()
    shot(page, "02-data")
    set_epochs_and_light_augmentation(page, 3)
    page.get_by_text("Frozen layer groups").first.wait_for()
    shot(page, "03-model")

    goto_page(page, "4 · Train")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"Run \d{8}-")).first.wait_for(timeout=30_000)
    assert "run=" in page.url
    run = held_run(tmp, re.search(r"run=([\w-]+)", page.url).group(1))
    page.get_by_text(re.compile(r"at epoch 1 of \d+")).first.wait_for(timeout=60_000)
    assert epochs_shown(page) == 1
    shot(page, "04-train-live")
    (run.path / "release").touch()  # the run goes on: the live chart must gain the other epochs
    page.get_by_text("Done in").first.wait_for(timeout=300_000)
    assert epochs_shown(page) == 3
    expect(page.get_by_role("button", name="Start training")).to_be_enabled(timeout=30_000)
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()
    assert page.locator(".js-plotly-plot").count() >= 1
    shot(page, "05-train-done")

    goto_page(page, "5 · Evaluate")
    page.get_by_text("Confusion matrix").first.wait_for(timeout=30_000)
    page.locator(".js-plotly-plot").first.wait_for()
    expect(page.get_by_text("Test accuracy").first).to_be_visible(timeout=30_000)
    shot(page, "06-evaluate")
    page.get_by_role("button", name="Export and check").click()
    page.get_by_text(re.compile(r"Checked on \d+ photos")).first.wait_for(timeout=120_000)
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name=re.compile("Download the onnx bundle")).click()
    with zipfile.ZipFile(download.value.path()) as zf:
        names = {Path(n).name for n in zf.namelist()}
        bundle = json.loads(zf.read(next(n for n in zf.namelist() if n.endswith("bundle.json"))))
    assert names == {"model.onnx", "bundle.json", "README.md"} and len(bundle["labels"]) == 10
    page.get_by_text("Download the onnx bundle").first.scroll_into_view_if_needed()
    shot(page, "06b-evaluate-export")

    goto_page(page, "6 · Predict")
    sample = next((ROOT / "sample_data" / "sign-language-digits" / "4").glob("*.JPG"))
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(sample))
    page.get_by_text(re.compile(r"\(\d+\.\d%\)")).first.wait_for(timeout=60_000)
    shot(page, "07-predict")
    page.get_by_text("Show where the model looked").first.click()
    page.get_by_text(re.compile(r"Red: the parts that made it say")).first.wait_for(timeout=60_000)
    expect(page.locator('[data-testid="stImage"] img')).to_have_count(2, timeout=30_000)
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=stImage] img')].every(i => i.complete)")
    shot(page, "07b-predict-grad-cam")
    page.close()


def test_refresh_during_training_reattaches(server, browser):
    url, tmp = server
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    page.goto(url)
    use_sample_data(page)
    set_epochs_and_light_augmentation(page, 20)
    goto_page(page, "4 · Train")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"Run \d{8}-")).first.wait_for(timeout=30_000)
    run_id = re.search(r"run=([\w-]+)", page.url).group(1)
    held_run(tmp, run_id)  # live, and stays live until stopped
    page.reload()
    page.get_by_text(f"Run {run_id}").first.wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"at epoch 1 of \d+")).first.wait_for(timeout=60_000)
    shot(page, "08-reattached")
    assert page.get_by_role("button", name="Stop").is_enabled()
    page.get_by_role("button", name="Stop").click()
    page.get_by_text(re.compile(r"\*\*stopped\*\*|: stopped")).first.wait_for(timeout=120_000)
    shot(page, "09-stopped")
    page.close()


def test_uploading_a_zip_of_bad_files_shows_the_report(server, browser, tmp_path):
    from hostile import bomb_png, jpeg_bytes, zip_bytes

    entries = [(f"mine/red/r{i}.jpg", jpeg_bytes("red", i)) for i in range(5)]
    entries += [(f"mine/blue/b{i}.jpg", jpeg_bytes("blue", i)) for i in range(5)]
    entries += [("mine/red/broken.jpg", b"\xff\xd8\xff not a jpeg"), ("mine/blue/bomb.png", bomb_png()),
                ("../../escape.jpg", jpeg_bytes("red", 9)), ("mine/empty/", b"")]
    upload = tmp_path / "bad-upload.zip"
    upload.write_bytes(zip_bytes(entries))
    url, tmp = server
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    page.goto(url)
    goto_page(page, "2 · Data")
    page.get_by_text("Upload a zip").first.click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(upload))
    page.get_by_role("button", name="Unpack and use").click()
    page.get_by_text(re.compile(r"Skipped 1 entr")).first.wait_for(timeout=60_000)
    expect(page.get_by_text("escape.jpg").first).to_be_visible()
    expect(page.get_by_text(re.compile(r"skipped red/broken\.jpg: not an image")).first).to_be_visible(timeout=30_000)
    expect(page.get_by_text(re.compile(r"skipped blue/bomb\.png: image is too large")).first).to_be_visible()
    expect(page.get_by_text("2 classes, 10 usable images").first).to_be_visible()
    shot(page, "10-bad-zip-report")
    assert not (tmp / "escape.jpg").exists() and not (tmp / "data" / "escape.jpg").exists()
    page.close()


def test_korean_switch_translates_the_whole_app(server, browser):
    url, _ = server
    page = browser.new_page(viewport={"width": 1400, "height": 2000})
    page.goto(url)
    page.get_by_role("heading", name=re.compile("1 · Plan")).first.wait_for(timeout=60_000)
    page.locator('[data-testid="stSidebar"]').get_by_text("한국어").click()
    page.get_by_role("heading", name=re.compile("1 · 계획")).first.wait_for(timeout=30_000)
    expect(page.get_by_text("시나리오 1: 사전 학습된 네트워크 전체를 고정하고 새 헤드를 학습").first).to_be_visible()
    expect(page.locator('[data-testid="stSidebarNav"] a', has_text="2 · 데이터")).to_be_visible()
    expect(page.get_by_text(re.compile(r"CPU: 코어 \d+개|GPU: ")).first).to_be_visible()
    assert "lang=ko" in page.url
    settled(page)
    shot(page, "13-korean-plan")
    goto_page(page, "2 · 데이터")
    page.get_by_role("button", name="샘플 데이터 사용").click()
    page.get_by_text("클래스 10개, 사용할 수 있는 이미지 200장").first.wait_for(timeout=60_000)
    expect(page.get_by_text(re.compile("차트: 클래스별 이미지 수")).first).to_be_visible()
    shot(page, "14-korean-data")
    page.reload()  # a new session from the same link stays Korean
    page.get_by_role("heading", name=re.compile("2 · 데이터")).first.wait_for(timeout=60_000)
    page.locator('[data-testid="stSidebar"]').get_by_text("English").click()
    page.get_by_role("heading", name=re.compile("2 · Data")).first.wait_for(timeout=30_000)
    page.close()
