"""Done means: a newcomer's whole walk in a real Chromium, in English and then in Korean.

plan → bundled sample → measure → model → train scenario 3 → evaluate → export → predict the same
photo twice plus two others → lab → Korean. No page may show an exception box, and no English
sentence may be left on the Korean pages. Screenshots go to test-artifacts/walk-*.png.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from conftest import ROOT
from test_e2e_browser import (browser, goto_page, releasing_every_hold, server, set_number, shot,  # noqa: F401
                              use_sample_data)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SAMPLE = ROOT / "sample_data" / "sign-language-digits"
# Names, not sentences: they stay as they are in Korean.
NAMES = re.compile(r"efficientnet\w*|EfficientNet[\w-]*|ImageNet|Sign Language Digits Dataset|Arda Mavi|Apache-2\.0|"
                   r"TL_\w+|Grad-CAM|GFLOPs|TorchScript|PyTorch|ONNX|onnxruntime|README\.md|bundle\.json|"
                   r"\d{8}-\d{6}-[\w-]+|\b[\w-]+\.(?:jpe?g|JPG|png|zip)\b|English", re.I)


def no_exception(page) -> None:
    page.wait_for_timeout(500)
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
        '[data-testid="stException"]').first.inner_text()


def english_left(page) -> list[str]:
    """Texts of the main area that hold an English phrase (two words or more) and no Hangul. The
    insides of Streamlit's own file uploader and camera widgets ("Upload", "Take Photo", the camera
    permission note) are Streamlit's words, which it does not translate; their labels are ours."""
    ours = (':is(h1, h2, h3, p, li, label, button, [data-testid="stCaptionContainer"])'
            ':not([data-testid="stFileUploaderDropzone"] *):not([data-testid="stCameraInput"] *)')
    texts = page.locator(f'[data-testid="stMain"] {ours}').all_inner_texts()
    left = []
    for text in texts:
        plain = NAMES.sub("", text)
        if re.search(r"[A-Za-z]{3,}[\s,]+[A-Za-z]{3,}", plain) and not re.search(r"[가-힣]", plain):
            left.append(text.strip()[:120])
    return left


def step(page, title: str, name: str) -> None:
    goto_page(page, title)
    no_exception(page)
    shot(page, name)


def test_a_newcomer_walks_through_the_whole_app(server, browser):  # noqa: F811
    url, tmp = server
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    page.goto(url)
    page.get_by_text("Scenario 1: Freeze the whole pretrained network").first.wait_for(timeout=60_000)
    no_exception(page)
    shot(page, "walk-01-plan")

    use_sample_data(page)
    page.get_by_role("button", name="Measure size and similarity").click()
    page.get_by_text(re.compile(r"Measured scenario: 3")).first.wait_for(timeout=400_000)
    page.get_by_role("button", name="Use the measured answers on the Plan page").click()
    page.get_by_text("What these numbers mean").first.wait_for(timeout=30_000)
    no_exception(page)
    shot(page, "walk-02-data-measured")

    goto_page(page, "3 · Model")
    set_number(page, "Epochs (0 = automatic)", 2)
    page.get_by_text(re.compile(r"Estimated training time|Expected duration")).first.wait_for(timeout=120_000)
    assert page.get_by_text(re.compile(r"Estimated training time|Expected duration")).count() == 1  # one estimate
    no_exception(page)
    shot(page, "walk-03-model")

    goto_page(page, "4 · Train")
    expect(page.get_by_text(re.compile(r"scenario 3")).first).to_be_visible()
    page.get_by_role("button", name="Start training").click()
    with releasing_every_hold(tmp / "runs"):
        page.get_by_text(re.compile(r"\d+ of \d+ test photos right")).first.wait_for(timeout=400_000)
    expect(page.get_by_text(re.compile(r"Done in \d+ s \(estimated \d+ s\)")).first).to_be_visible()
    no_exception(page)
    shot(page, "walk-04-train-done")

    step(page, "5 · Evaluate", "walk-05-evaluate")
    expect(page.get_by_text(re.compile(r"\d+ of \d+ test photos right")).first).to_be_visible()
    page.get_by_role("button", name="Export and check").click()
    page.get_by_text(re.compile(r"Checked on \d+ photos")).first.wait_for(timeout=120_000)
    no_exception(page)
    shot(page, "walk-06-export")

    goto_page(page, "6 · Predict")
    photos = [next((SAMPLE / d).glob("*.JPG")) for d in ("4", "4", "7", "9")]
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files([str(p) for p in photos])
    # An answer each: the class, or "not sure" with the best guess below the run's threshold (a 2-epoch model).
    answer = re.compile(r"^(?:\S+ \(\d+\.\d%\)|not sure \(best guess: \S+, \d+\.\d%\))$")
    expect(page.get_by_text(answer)).to_have_count(4, timeout=120_000)
    no_exception(page)
    shot(page, "walk-07-predict")

    goto_page(page, "8 · Scenario lab")
    set_number(page, "Fine-tuning epochs for scenarios 2-4", 1)
    page.get_by_role("button", name="Run the four scenarios").click()
    assert "lab=" in page.url or page.wait_for_url(re.compile("lab="), timeout=30_000) is None
    with releasing_every_hold(tmp / "runs"):
        page.get_by_text(re.compile(r"Scenario \d of 4")).first.wait_for(timeout=300_000)
        shot(page, "walk-08-lab-running")
        page.get_by_text(re.compile(r"The lab finished in \d+ s")).first.wait_for(timeout=600_000)
    expect(page.get_by_text(re.compile(r"Best: scenario \d with")).first).to_be_visible()
    expect(page.get_by_text(re.compile(r"Advisor \(measured\): scenario \d")).first).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(1, timeout=30_000)  # the last live frame is replaced
    expect(page.locator(".js-plotly-plot .scatterlayer .trace")).to_have_count(4)  # one marker per scenario
    no_exception(page)
    shot(page, "walk-09-lab-done")

    page.locator('[data-testid="stSidebar"]').get_by_text("한국어").click()
    page.get_by_role("heading", name=re.compile("실험실|시나리오")).first.wait_for(timeout=30_000)
    pages = [("1 · 계획", "plan"), ("2 · 데이터", "data"), ("3 · 모델", "model"), ("4 · 학습", "train"),
             ("5 · 평가", "evaluate"), ("6 · 예측", "predict"), ("7 · 실행 기록", "runs"), ("8 · 시나리오 실험실", "lab")]
    english = {}
    for title, name in pages:
        page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
        page.wait_for_timeout(2500)
        no_exception(page)
        shot(page, f"walk-10-ko-{name}")
        if left := english_left(page):
            english[name] = left
    assert not english, english
    page.close()
