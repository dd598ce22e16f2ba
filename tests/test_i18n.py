"""Korean and English: every message id has a translation with the same fields, pages show no
untranslated literal, tl_core's sentences and the CLI follow the language, and the sidebar switch
changes what the pages say."""

from __future__ import annotations

import ast
import json
import os
import re
import string
import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, make_folder
from tl_core import i18n
from tl_core.i18n import _, catalog, extract, ngettext, set_language, source_files

HANGUL = re.compile("[\uac00-\ud7a3]")


@pytest.fixture()
def korean():
    set_language("ko")
    yield
    set_language("en")


def fields(text: str) -> set[str]:
    return {f for _lit, f, _spec, _conv in string.Formatter().parse(text) if f is not None}


def test_every_message_has_a_korean_translation_with_the_same_fields():
    ids = extract(source_files(ROOT))
    ko = catalog("ko")
    assert len(ids) > 400  # the pages, the CLI and tl_core's sentences
    missing = sorted(k for k in ids if not ko.get(k))
    assert not missing, f"add these to tl_core/locales/ko.json (python -m tl_core.i18n ko): {missing[:10]}"
    unused = sorted(set(ko) - set(ids))
    assert not unused, f"ko.json has entries no code uses: {unused[:10]}"
    for msgid, text in ko.items():
        assert fields(text) == fields(msgid), (msgid, text)
        assert HANGUL.search(text) or not re.search("[A-Za-z]{4,}", re.sub(r"\{[^}]*\}", "", msgid)), (msgid, text)


# Streamlit calls whose first argument or label/text/help keyword is shown to the user.
SHOWN = {"title", "header", "subheader", "write", "markdown", "caption", "info", "warning", "error", "success",
         "button", "radio", "selectbox", "multiselect", "toggle", "checkbox", "number_input", "slider",
         "select_slider", "file_uploader", "camera_input", "download_button", "expander", "spinner", "metric",
         "progress", "page_link", "text_input", "set_page_config", "Page", "tabs"}


def _words(node: ast.AST) -> str:
    """The literal text of a str / f-string node without icons and fields ('' when it is a call)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):
        text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    elif isinstance(node, ast.List):
        return " ".join(_words(e) for e in node.elts)
    else:
        return ""
    return re.sub(r":material/\w+:", "", text)


def test_pages_show_no_untranslated_literal():
    bad = []
    for path in [ROOT / "app.py", *ROOT.glob("pages/*.py"), *ROOT.glob("ui/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SHOWN):
                continue
            first = [] if node.func.attr in ("Page", "page_link") else node.args[:1]  # those take a file path
            shown = first + [k.value for k in node.keywords if k.arg in ("label", "text", "help", "title",
                                                                                   "page_title", "caption")]
            for arg in shown:
                if re.search("[A-Za-z]{3,}", _words(arg)) and "Language / 언어" not in _words(arg):
                    bad.append(f"{path.name}:{node.lineno}")
    assert not bad, f"wrap these texts in _(): {bad}"


def test_lookup_fills_fields_in_both_languages(korean):
    assert _("{seconds:.0f} s", seconds=12.4) == "12초"
    assert ngettext("Skipped {n} entry of the zip:", "Skipped {n} entries of the zip:", 3) == "zip 항목 3개를 건너뛰었습니다:"
    set_language("en")
    assert _("{seconds:.0f} s", seconds=12.4) == "12 s"
    assert ngettext("Skipped {n} entry of the zip:", "Skipped {n} entries of the zip:", 1) == \
        "Skipped 1 entry of the zip:"
    set_language("xx")  # unknown codes fall back to English
    assert i18n.language() == "en"


def test_tl_core_sentences_follow_the_language(tmp_path, korean):
    from tl_core.data import scan_folder, validate
    from tl_core.diagnose import diagnose, summarize
    from tl_core.figures import describe_counts, training_curves

    records = [{"kind": "epoch", "stage": "head", "epoch": i + 1, "train_acc": 0.99, "val_acc": 0.6 + 0.01 * i,
                "train_loss": 0.1, "val_loss": 1.0} for i in range(5)]
    d = diagnose(records)
    assert d["verdict"] == "overfitting"  # a stable code; the page shows _(verdict)
    assert _(d["verdict"]) == "과적합" and HANGUL.search(d["why"]) and all(HANGUL.search(a) for a in d["advice"])
    assert summarize(records).startswith("최고 검증 정확도 64.0%")
    assert describe_counts({"a": 3, "b": 9}).startswith("차트: 클래스별 이미지 수")
    assert training_curves(records).layout.xaxis.title.text == "에포크"
    make_folder(tmp_path / "d", per_class=3)
    report = validate(scan_folder(tmp_path / "d"))[0]
    few = [i.message for i in report.issues if i.code == "few_images"]
    assert few and all("최소 20장" in m for m in few)


def test_cli_speaks_korean_with_tl_lang(tmp_path):
    env = {**os.environ, "TL_LANG": "ko", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "tl_core", "validate", str(tmp_path / "nowhere")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip() == f"오류: 데이터 폴더가 없습니다: {tmp_path / 'nowhere'}. 클래스마다 하위 폴더가 하나씩 있는 폴더를 주세요"
    out = subprocess.run([sys.executable, "-m", "tl_core", "advise", "--size", "small", "--similarity", "different",
                          "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(out.stdout.splitlines()[-1])["title"].startswith("Freeze only the early")  # JSON stays English


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("TL_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("TL_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.chdir(ROOT)
    return tmp_path


def test_sidebar_switch_translates_pages_and_tl_core_text(env):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert at.title[0].value.startswith("1 · Plan")
    at.radio(key="lang_switch").set_value("ko").run()
    assert not at.exception
    assert at.title[0].value == "1 · 계획: 사전 학습된 네트워크를 얼마나 재사용할까"
    assert any("시나리오 1: 사전 학습된 네트워크 전체를 고정하고 새 헤드를 학습" in s.value for s in at.subheader)
    at.switch_page("pages/data.py").run()
    at.button(key="d_use_sample").click().run()
    assert not at.exception
    assert any("클래스 10개, 사용할 수 있는 이미지 200장" in s.value for s in at.subheader)
    assert any(c.value.startswith("차트: 클래스별 이미지 수") for c in at.caption)
    at.session_state["language"] = "en"  # (AppTest reruns only the page, so the sidebar switch is not drawn here)
    at.run()
    assert any("10 classes, 200 usable images" in s.value for s in at.subheader)  # the check is cached per language


def test_a_korean_link_opens_the_app_in_korean(env):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["lang"] = "ko"
    at.run()
    assert not at.exception
    assert at.radio(key="lang_switch").value == "ko"
    assert at.title[0].value.startswith("1 · 계획")
    assert at.sidebar.caption[0].value.endswith("CPU: 코어 {}개, 스레드 {}개(GPU 없음)".format(
        os.cpu_count(), __import__("torch").get_num_threads())) or "GPU" in at.sidebar.caption[0].value


@pytest.mark.parametrize("word,expected", [
    ("'사과'을(를)", "'사과'를"), ("'수박'을(를)", "'수박'을"),  # no final consonant / with one
    ("'8'을(를)", "'8'을"), ("'2'을(를)", "'2'를"), ("'3'이(가)", "'3'이"), ("'9'이(가)", "'9'가"),  # 팔, 이, 삼, 구
    ("'cat'을(를)", "'cat'을"), ("'dog'을(를)", "'dog'를"), ("'ball'(으)로", "'ball'로"), ("'sun'(으)로", "'sun'으로"),
    ("'물'(으)로", "'물'로"), ("'밥'(으)로", "'밥'으로"), ("'7'(으)로", "'7'로"), ("80%이(가)", "80%가"),
    ("고양이과(와) 개", "고양이와 개"), ("곰과(와) 개", "곰과 개"), ("책은(는)", "책은"), ("나무은(는)", "나무는"),
])
def test_korean_particles_follow_the_word_before_them(word, expected):
    from tl_core.i18n import korean_particles

    assert korean_particles(word) == expected


def test_translated_sentences_pick_their_particles():
    from tl_core.i18n import _, set_language

    set_language("ko")
    try:
        eight = _(" Most frequent mistake: '{true}' taken for '{pred}' ({n} times).", true="8", pred="3", n=2)
        two = _(" Most frequent mistake: '{true}' taken for '{pred}' ({n} times).", true="2", pred="9", n=2)
    finally:
        set_language("en")
    assert "'8'을 '3'으로" in eight and "'2'를 '9'로" in two
