"""Classroom workspaces without accounts: names, join code, tokens, quotas, the shared queue, and the
boundary between students through every page and URL parameter; the teacher view."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from hostile import jpeg_bytes, zip_bytes
from tl_core import workspaces
from tl_core.errors import RunError
from tl_core.launcher import check_queue
from tl_core.workspaces import WorkspaceError

CODE, PIN = "QK7M2P", "424242"


@pytest.fixture()
def classroom(env, monkeypatch):
    monkeypatch.setenv("TL_CLASSROOM", "1")
    monkeypatch.setenv("TL_CLASSROOM_DIR", str(env / "classroom"))
    monkeypatch.setenv("TL_JOIN_URL", f"https://10.0.0.5:8501/join?code={CODE}")
    monkeypatch.setenv("TL_JOIN_CODE", CODE)
    monkeypatch.setenv("TL_TEACHER_PIN", PIN)
    monkeypatch.setenv("TL_QUEUE_ROOT", str(env / "classroom" / "workspaces"))
    monkeypatch.setattr(workspaces, "_pin_failures", [])  # wrong PINs of other tests do not lock this one
    return env / "classroom"


def fake_run(runs: Path, run_id: str, data: str = "colours", acc: float | None = 0.8, **status) -> Path:
    path = runs / run_id
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"data": f"/somewhere/{data}", "backbone": "efficientnet_lite0",
                                                  "scenario": 1}))
    status = {"state": "succeeded", "result": {"test_accuracy": acc, "seconds": 3}, **status}
    (path / "status.json").write_text(json.dumps(status))
    return path


def test_an_advice_race_waits_in_the_queue_and_the_teacher_sees_it(classroom):
    from tl_core.launcher import launch_advice
    from tl_core.teacher import live_runs

    a = workspaces.join("Ann", CODE)
    (a.data_root / "hands").mkdir(parents=True)
    job = launch_advice(str(a.data_root / "hands"), a.runs_dir, python="/bin/false")  # started, then gone
    assert job.status()["state"] == "queued" and job.status().get("queued_at")
    fake = a.runs_dir / "20260101-000000-advice-bbbbbb"  # a race that is waiting (its pid not known yet)
    fake.mkdir()
    (fake / "status.json").write_text(json.dumps({"state": "queued", "queued_at": time.time()}))
    with pytest.raises(RunError, match="is already waiting for a training slot"):
        launch_advice(str(a.data_root / "hands"), a.runs_dir)  # a second race, or a run, must wait its turn
    assert [run.path.name for _ws, run in live_runs()] == [fake.name]


@pytest.mark.parametrize("name", ["", "   ", "../x", "a/b", "x" * 33, "_hidden", "a\x00b", "<script>", "a;rm -rf"])
def test_hostile_names_are_refused(classroom, name):
    with pytest.raises(WorkspaceError):
        workspaces.join(name, CODE)
    assert not workspaces.list_workspaces()


def test_joining_needs_the_code_and_a_free_name(classroom):
    with pytest.raises(WorkspaceError, match="join code"):
        workspaces.join("Mina", "WRONG1")
    ws = workspaces.join("  Mina  Kim ", CODE.lower())
    assert ws.name == "Mina Kim" and ws.root.parent == classroom / "workspaces"
    assert ws.root.name.startswith("ws-")  # the folder never comes from what was typed
    with pytest.raises(WorkspaceError, match="already uses the name"):
        workspaces.join("mina kim", CODE)
    assert workspaces.join("민아", CODE).name == "민아"


@pytest.mark.parametrize("token", [None, "", "short", "../" * 10, "x" * 65, "a" * 32])
def test_only_a_workspaces_own_token_opens_it(classroom, token):
    ws = workspaces.join("Mina", CODE)
    assert workspaces.from_token(workspaces.token_of(ws)) == ws
    assert workspaces.from_token(token) is None


def test_the_quota_refuses_with_what_to_do(classroom, monkeypatch):
    monkeypatch.setenv("TL_WORKSPACE_QUOTA_MB", "1")
    ws = workspaces.join("Mina", CODE)
    (ws.data_root / "cats").mkdir(parents=True)
    (ws.data_root / "cats" / "a.jpg").write_bytes(b"x" * 900_000)
    workspaces.check_space(ws, 100_000)
    with pytest.raises(WorkspaceError, match="over its limit of 1 MB: delete a data set"):
        workspaces.check_space(ws, 200_000)


def test_one_waiting_run_per_workspace_and_one_queue_for_the_class(classroom, monkeypatch):
    a, b = workspaces.join("Ann", CODE), workspaces.join("Ben", CODE)
    fake_run(a.runs_dir, "20260101-000000-run-aaaaaa", state="queued", queued_at=time.time(), result=None)
    check_queue(b.runs_dir)  # Ben may still queue one
    with pytest.raises(RunError, match="is already waiting for a training slot"):
        check_queue(a.runs_dir)
    monkeypatch.setenv("TL_MAX_QUEUED", "1")  # the class's queue counts every workspace
    with pytest.raises(RunError, match="1 runs are already waiting"):
        check_queue(b.runs_dir)
    from tl_core.runs import RunDir, queue_scope

    members, slots = queue_scope(RunDir(a.runs_dir / "20260101-000000-run-aaaaaa"))
    assert slots == classroom / "workspaces" / ".slots" and len(members) == 1


def test_clearing_a_workspace_deletes_its_images_and_runs_only(classroom):
    a, b = workspaces.join("Ann", CODE), workspaces.join("Ben", CODE)
    for ws in (a, b):
        fake_run(ws.runs_dir, "20260101-000000-run-aaaaaa")
        (ws.data_root / "cats").mkdir(parents=True)
        workspaces.save_wizard(ws, {"data_dir": "x"})
    workspaces.clear(a)
    assert not a.runs_dir.exists() and not a.data_root.exists() and not a.wizard_file.exists()
    assert workspaces.from_token(workspaces.token_of(a)) == a  # still joined, now empty
    assert b.runs_dir.exists() and b.data_root.exists() and workspaces.load_wizard(b) == {"data_dir": "x"}
    assert workspaces.remove_all() == 2 and not workspaces.list_workspaces()


# Through the pages ----------------------------------------------------------------------------
def app(token: str | None = None, **params) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=40)
    if token:
        at.query_params["ws"] = token
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def joined_app(name: str) -> tuple[AppTest, str]:
    at = app()
    at.text_input(key="j_name").input(name)
    at.text_input(key="j_code").input(CODE)
    at.button[0].click().run()  # the form's Join button
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at, at.session_state["ws_token"]


def test_a_visitor_must_join_before_any_page(classroom):
    at = app()
    assert not at.exception
    with pytest.raises(Exception):
        at.switch_page("pages/train.py").run()  # only Join and the teacher view exist before joining
    assert at.text_input(key="j_code").value == ""
    at = app(code=CODE)
    assert at.text_input(key="j_code").value == CODE  # from the QR code's link


def test_students_never_see_each_others_runs_through_any_page_or_link(classroom):
    _at, ann = joined_app("Ann")
    _at, ben = joined_app("Ben")
    ann_ws = workspaces.from_token(ann)
    run_id = "20260101-000000-run-aaaaaa"
    fake_run(ann_ws.runs_dir, run_id)
    lab = ann_ws.runs_dir / "20260101-000001-lab-bbbbbb"
    lab.mkdir()
    (lab / "status.json").write_text(json.dumps({"state": "succeeded"}))
    (lab / "lab.json").write_text("{}")

    mine = app(ann, run=run_id).switch_page("pages/runs.py").run()
    assert any(run_id in str(df.value) for df in mine.dataframe)
    for page in ("runs", "train", "evaluate", "predict", "lab"):
        at = app(ben, run=run_id, lab=lab.name).switch_page(f"pages/{page}.py").run()
        assert not at.exception, page
        shown = " ".join(str(e.value) for kind in ("markdown", "caption", "info", "dataframe", "selectbox", "code")
                         for e in getattr(at, kind))
        assert run_id not in shown and lab.name not in shown, page
    at = app(ben).switch_page("pages/runs.py").run()
    assert any("No runs yet" in i.value for i in at.info)


def test_a_reload_comes_back_to_the_same_answers(classroom):
    at, token = joined_app("Ann")
    at.switch_page("pages/data.py").run()
    at.button(key="d_use_sample").click().run()
    assert "sign-language-digits" in at.session_state["wizard"]["data_dir"]
    again = app(token).switch_page("pages/train.py").run()  # a new session from the same link
    assert "sign-language-digits" in again.session_state["wizard"]["data_dir"]
    assert again.button(key="t_start").disabled is False


def test_an_upload_over_the_quota_says_what_to_do(classroom, monkeypatch):
    monkeypatch.setenv("TL_WORKSPACE_QUOTA_MB", "0.01")
    at, _token = joined_app("Cleo")
    at.switch_page("pages/data.py").run()
    at.radio(key="d_source").set_value("upload").run()
    data = zip_bytes([(f"mine/red/r{i}.jpg", jpeg_bytes("red", i)) for i in range(20)])
    at.file_uploader(key="d_zip").set_value(("mine.zip", data, "application/zip")).run()
    at.button(key="d_unzip").click().run()
    assert any("over its limit" in e.value for e in at.error), [e.value for e in at.error]
    assert not list(workspaces.from_token(_token).data_root.rglob("*.jpg"))


def test_an_open_data_import_over_the_quota_stops_and_leaves_nothing(classroom, monkeypatch):
    from test_opendata import fake_mnist

    from tl_core import settings

    fake_mnist(settings.cache_root() / "datasets", "MNIST", per_class=3)  # torchvision's files, "downloaded"
    monkeypatch.setenv("TL_WORKSPACE_QUOTA_MB", "0.01")  # 60 noise PNGs take ~60 KB
    at, token = joined_app("Dara")
    at.switch_page("pages/data.py").run()
    at.radio(key="d_source").set_value("open").run()
    at.button(key="d_open_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("over its limit" in e.value for e in at.error), [e.value for e in at.error]
    assert not [p for p in workspaces.from_token(token).data_root.rglob("*") if p.is_file()]
    monkeypatch.setenv("TL_WORKSPACE_QUOTA_MB", "1")
    at.button(key="d_open_go").click().run()
    assert not at.error and len(list(workspaces.from_token(token).data_root.rglob("*.png"))) == 60


def test_teacher_view_needs_the_pin_and_sees_every_workspace(classroom):
    _at, ann = joined_app("Ann")
    _at, ben = joined_app("Ben")
    fake_run(workspaces.from_token(ann).runs_dir, "20260101-000000-run-aaaaaa", acc=0.9)
    fake_run(workspaces.from_token(ben).runs_dir, "20260101-000000-run-bbbbbb", acc=0.95)
    at = app().switch_page("pages/teacher.py").run()
    at.text_input(key="t_pin").input("000000")
    at.button[0].click().run()
    assert at.error and not at.dataframe
    at.text_input(key="t_pin").input(PIN)
    at.button[0].click().run()
    tables = [df.value for df in at.dataframe]
    assert set(tables[0]["name"]) == {"Ann", "Ben"}
    assert list(tables[1]["name"]) == ["Ben", "Ann"]  # the leaderboard of the data set, best first
    at.text_input(key="t_confirm").input("clear")
    at.button(key="t_clear").click().run()
    assert len(workspaces.list_workspaces()) == 2 and at.error
    at.text_input(key="t_confirm").input("clear the class")
    at.button(key="t_clear").click().run()
    assert not workspaces.list_workspaces()


def test_teacher_stops_one_students_run_from_its_row(classroom):
    import subprocess
    import sys

    _at, ann = joined_app("Ann")
    _at, ben = joined_app("Ben")
    ann_ws, ben_ws = workspaces.from_token(ann), workspaces.from_token(ben)
    fake_run(ann_ws.runs_dir, "20260101-000000-run-aaaaaa", acc=0.9, result={"test_accuracy": 0.9, "test_images": 40})
    # Ben's run "trains": a live process in its own group, as the launcher starts one (its command
    # line names tl_core, which is how a run's pid is told from a reused one).
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "tl_core"], start_new_session=True)
    try:
        fake_run(ben_ws.runs_dir, "20260101-000000-run-bbbbbb", state="running", pid=proc.pid, result=None)
        at = app().switch_page("pages/teacher.py").run()
        at.text_input(key="t_pin").input(PIN)
        at.button[0].click().run()
        board = at.dataframe[1].value
        assert list(board["test images"]) == [40] and list(board["95% interval"]) == ["77%-96%"]  # Wilson, 36 of 40
        rows = [t.value for t in at.text if "run-" in t.value]
        assert rows == ["Ben · 20260101-000000-run-bbbbbb · running"], rows
        at.button(key=f"t_stop_{ben_ws.id}_20260101-000000-run-bbbbbb").click().run()
        assert proc.wait(timeout=30) is not None  # the process was ended, not only marked
        assert any("stopped" in s.value for s in at.success)
        assert not [t.value for t in at.text if "run-" in t.value] and "Nothing is training." in [c.value for c in at.caption]
    finally:
        proc.kill()
        proc.wait()


def test_clear_my_workspace_on_the_join_page(classroom):
    at, token = joined_app("Ann")
    ws = workspaces.from_token(token)
    fake_run(ws.runs_dir, "20260101-000000-run-aaaaaa")
    (ws.data_root / "cats").mkdir(parents=True)
    at.run()
    assert at.button(key="j_clear").disabled
    at.checkbox(key="j_clear_confirm").check().run()
    at.button(key="j_clear").click().run()
    assert not ws.runs_dir.exists() and not ws.data_root.exists()
    assert any("empty now" in i.value for i in at.info)


def test_a_student_can_open_the_model_page_with_a_data_set(classroom):
    """The Model page keeps its estimate (a TrainConfig) with the answers: only the answers are saved."""
    at, token = joined_app("Ann")
    at.switch_page("pages/data.py").run()
    at.button(key="d_use_sample").click().run()
    at.switch_page("pages/model.py").run()
    assert not at.exception, [e.value for e in at.exception]
    saved = workspaces.load_wizard(workspaces.from_token(token))
    assert "sign-language-digits" in saved["data_dir"] and "estimate" not in saved


def test_answers_changed_together_are_saved_too(classroom):
    from ui.common import _SavedAnswers

    ws = workspaces.join("Ann", CODE)
    w = _SavedAnswers({"scenario": None, "epochs": 0}, ws)
    w.update(scenario=3, epochs=12)  # what "train again with ..." does
    assert workspaces.load_wizard(ws)["scenario"] == 3 and workspaces.load_wizard(ws)["epochs"] == 12


@pytest.mark.parametrize("typed", ["１２３４５６", "ㅁㅠㅊ", "é" * 6, "424242\u200b"])
def test_a_pin_or_code_typed_with_another_keyboard_is_refused_politely(classroom, typed):
    assert workspaces.check_pin(typed) is False
    with pytest.raises(WorkspaceError, match="join code"):
        workspaces.join("Mina", typed)


def test_guessing_the_pin_is_slowed_down(classroom, monkeypatch):
    monkeypatch.setattr(workspaces, "_pin_failures", [])
    for _ in range(workspaces.PIN_TRIES_PER_MINUTE):
        assert workspaces.check_pin("000000") is False
    assert workspaces.pin_locked()
    assert workspaces.check_pin(PIN) is False  # even the right PIN waits out the minute
    monkeypatch.setattr(workspaces, "_pin_failures", [time.time() - 61] * workspaces.PIN_TRIES_PER_MINUTE)
    assert workspaces.check_pin("４２４２４２")  # the right PIN, typed with full-width digits


def test_the_quota_counts_a_zip_unpacked_not_compressed(classroom, monkeypatch):
    """Eight plain 1000x1000 BMPs: 24 MB unpacked, a few KB zipped. A quota of 1 MB refuses them."""
    import io
    import zipfile

    from PIL import Image

    monkeypatch.setenv("TL_WORKSPACE_QUOTA_MB", "1")
    bmp, packed = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (1000, 1000), (200, 30, 30)).save(bmp, format="BMP")
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in (f"big/{c}/{i}.bmp" for c in ("a", "b") for i in range(4)):
            zf.writestr(name, bmp.getvalue())
    data = packed.getvalue()
    assert len(data) < 200_000
    at, token = joined_app("Dee")
    at.switch_page("pages/data.py").run()
    at.radio(key="d_source").set_value("upload").run()
    at.file_uploader(key="d_zip").set_value(("big.zip", data, "application/zip")).run()
    at.button(key="d_unzip").click().run()
    assert any("over its limit" in e.value for e in at.error), [e.value for e in at.error]
    assert not list(workspaces.from_token(token).data_root.rglob("*.bmp"))
