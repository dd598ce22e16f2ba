"""AppTest smoke tests per page: no exception, key widgets present, state kept across pages."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, held, make_folder, wait_for
from tl_core.stats import interval_text


def app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()


def page(at: AppTest, name: str) -> AppTest:
    at.switch_page(f"pages/{name}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_plan_page_answers_change_the_scenario_and_persist(env):
    at = app()
    assert not at.exception
    assert "Plan" in at.title[0].value
    at.radio(key="q_size").set_value("large").run()
    at.radio(key="q_similarity").set_value("different").run()
    assert any("Scenario 4" in s.value for s in at.subheader)
    page(at, "data")
    page(at, "plan")
    assert at.radio(key="q_size").value == "large"
    assert any("Scenario 4" in s.value for s in at.subheader)
    at.toggle(key="q_override").set_value(True).run()
    at.selectbox(key="q_scenario").set_value(1).run()
    assert any("recommends" in w.value for w in at.warning)


def test_data_page_sample_and_server_folder(env):
    at = page(app(), "data")
    at.button(key="d_use_sample").click().run()
    assert not at.exception
    assert any("10 classes, 200 usable images" in s.value for s in at.subheader)
    assert any("Ready to train" in s.value for s in at.success)
    make_folder(env / "data" / "colours", per_class=6)
    at.radio(key="d_source").set_value("server").run()
    assert "colours" in at.selectbox(key="d_folder").options
    at.selectbox(key="d_folder").set_value("colours").run()
    at.button(key="d_use_folder").click().run()
    assert any("3 classes, 18 usable images" in s.value for s in at.subheader)


def test_data_page_zip_upload_reports_problems(env):
    import io
    import zipfile

    src = make_folder(env / "src", per_class=5, classes=("red", "blue"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in src.rglob("*.jpg"):
            zf.write(p, f"mydata/{p.relative_to(src)}")
        zf.writestr("mydata/red/broken.jpg", b"not really a jpeg")
        zf.writestr("../evil.jpg", b"x")
        zf.writestr("__MACOSX/red/._a.jpg", b"x")
    at = page(app(), "data")
    at.radio(key="d_source").set_value("upload").run()
    at.file_uploader(key="d_zip").set_value(("mydata.zip", buf.getvalue(), "application/zip")).run()
    at.button(key="d_unzip").click().run()
    assert not at.exception
    assert any("evil.jpg" in w.value for w in at.warning)
    assert any("broken.jpg" in w.value for w in at.warning)
    assert any("2 classes, 10 usable images" in s.value for s in at.subheader)
    assert not (env / "data" / "evil.jpg").exists() and not (env / "evil.jpg").exists()


def test_a_zip_without_class_folders_is_a_clear_dead_end_not_a_trap(env):
    import io
    import zipfile

    src = make_folder(env / "src", per_class=3, classes=("red",))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in src.rglob("*.jpg"):
            zf.write(p, p.name)  # images at the zip's root: no class folders
    at = page(app(), "data")
    at.radio(key="d_source").set_value("upload").run()
    at.file_uploader(key="d_zip").set_value(("flat.zip", buf.getvalue(), "application/zip")).run()
    at.button(key="d_unzip").click().run()
    message = " ".join(e.value for e in at.error)
    assert "has no class sub-folders" in message and "`" in message and "*" not in message
    assert str(env) not in message  # the server's folders stay private
    page(at, "train")  # the broken folder is not left selected: Train asks for a data set
    assert any("Data page first" in i.value for i in at.info) and not at.button


def test_evaluate_says_why_a_failed_run_has_no_results(env):
    from tl_core.runs import RunDir

    run = RunDir.create(env / "runs")
    (run.path / "config.json").write_text(json.dumps({"data": "/x/flat", "backbone": "efficientnet_lite0"}))
    run.write_status(state="failed", error="flat has no class sub-folders")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["run"] = run.id
    at.switch_page("pages/evaluate.py").run()
    assert any("failed" in e.value and "flat has no class sub-folders" in e.value for e in at.error)
    assert not any("appears here when training ends" in i.value for i in at.info)


def test_a_fresh_session_does_not_show_another_sessions_run(env):
    run = _trained_run(env)
    at = page(app(), "evaluate")
    assert not any(run.id in c.value for c in at.caption) and any("Train a model first" in i.value for i in at.info)


def test_model_page_diagram_follows_the_slider(env):
    at = page(app(), "model")
    assert at.dataframe and at.selectbox(key="m_backbone").value == "efficientnet_lite0"
    assert at.slider(key="m_frozen").value == 18  # scenario 1: everything frozen
    at.slider(key="m_frozen").set_value(9).run()
    assert not at.exception
    assert any("Grey: frozen (8%" in c.value for c in at.caption)


@pytest.mark.slow
def test_train_evaluate_predict_runs_pages(env):
    at = page(app(), "train")
    assert any("Data page" in i.value for i in at.info)
    page(at, "data").button(key="d_use_sample").click().run()
    page(at, "model")
    at.number_input(key="m_epochs").set_value(3).run()
    page(at, "train")
    at.button(key="t_start").click().run()
    assert not at.exception
    runs = list((env / "runs").iterdir())
    assert len(runs) == 1
    assert at.query_params["run"] == [runs[0].name] or at.query_params["run"] == runs[0].name
    assert at.button(key="t_start").disabled  # a second click cannot start a second run
    deadline = time.time() + 300
    while time.time() < deadline:
        at.run()
        if any("Done in" in c.value for c in at.caption):
            break
        time.sleep(2)
    assert any("Done in" in c.value for c in at.caption), [m.value for m in at.markdown]
    # Outcome first: the verdict names the count of test photos right, whatever it is.
    ev = json.loads((runs[0] / "eval.json").read_text())["test"]
    right = round(ev["accuracy"] * ev["n"])
    assert any(f"{right} of {ev['n']} test photos right" in e.value for e in [*at.success, *at.warning, *at.error])
    page(at, "evaluate")
    assert any("Test accuracy" in m.label for m in at.metric)
    page(at, "predict")
    sample = next((ROOT / "sample_data" / "sign-language-digits" / "3").glob("*.JPG"))
    at.file_uploader(key="p_files").set_value([(sample.name, sample.read_bytes(), "image/jpeg")]).run()
    assert not at.exception
    from tl_core.predict import Predictor

    from tl_core.calibration import apply_temperature, load_calibration
    from tl_core.predict import top_k

    predictor = Predictor.from_run(runs[0])  # the page shows the calibrated answer (or "not sure" and its guess)
    probs = apply_temperature(predictor.probs([str(sample)]), load_calibration(runs[0])["temperature"])
    top = top_k(probs, predictor.labels, 1)[0][0]
    assert any(top["label"] in m.value and f"{top['prob']:.1%}" in m.value for m in at.markdown), "the model's answer"
    shown = len(at.get("image"))
    at.toggle(key="p_cam").set_value(True).run()
    assert not at.exception and len(at.get("image")) > shown  # the Grad-CAM overlay is added
    page(at, "runs")
    row = at.dataframe[0].value.iloc[0]
    acc = json.loads((runs[0] / "eval.json").read_text())["test"]["accuracy"]
    assert (row["run"], row["status"]) == (runs[0].name, "succeeded")
    assert row["test accuracy"] == f"{acc:.1%} ({interval_text(acc, 30)})"  # 30 test photos in the sample's split
    shutil.rmtree(env / "runs")


def test_folder_picker_cannot_leave_the_data_root(env):
    outside = make_folder(env / "outside" / "secret", per_class=3)
    make_folder(env / "data" / "inside", per_class=3)
    (env / "data").mkdir(exist_ok=True)
    os.symlink(outside, env / "data" / "escape")
    at = page(app(), "data")
    at.radio(key="d_source").set_value("server").run()
    options = at.selectbox(key="d_folder").options
    assert "inside" in options and not any("escape" in o or ".." in o for o in options)


def _trained_run(env):
    """A run whose test split holds a mislabelled photo (a red one in blue/): a mistake for sure."""
    from tl_core.config import TrainConfig
    from tl_core.runs import RunDir
    from tl_core.train import train_run

    data = env / "data" / "colours"
    make_folder(data / "train", per_class=6)
    make_folder(data / "test", per_class=2, seed=5)
    shutil.copy(data / "test" / "red" / "red_0.jpg", data / "test" / "blue" / "mislabelled.jpg")
    run = RunDir.create(env / "runs")
    cfg = TrainConfig(data=str(data), scenario=1, epochs=5, cache_dir=str(env / "cache"))
    cfg.save(run.config_file)
    train_run(run, cfg)
    return run


@pytest.mark.slow
def test_a_new_server_reattaches_and_a_deleted_run_does_not_crash(env):
    run = _trained_run(env)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["run"] = run.id  # a reload after a server restart: only the URL survives
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert any(run.id in m.value for m in at.markdown)
    page(at, "evaluate")
    assert any("Test accuracy" in m.label for m in at.metric)
    assert any("true **blue** · said **red**" in c.value for c in at.caption)
    plain = len(at.get("image"))
    at.toggle(key="e_cam").set_value(True).run()
    assert not at.exception and len(at.get("image")) == plain  # each mistake now shown as its heat map
    assert any("true **blue** · said **red**" in c.value for c in at.caption)
    at.button(key="e_maps").click().run()  # the test images' map: scenario 1 froze the body, so one map
    assert not at.exception and any("same as before" in i.value for i in at.info)
    shutil.rmtree(run.path)  # deleted from the Runs page of another session
    for name in ("evaluate", "train", "predict", "runs"):
        page(at, name)


@pytest.mark.slow
def test_two_sessions_get_separate_runs_and_the_second_waits(env, monkeypatch):
    monkeypatch.setenv("TL_TEST_HOLD_AFTER_EPOCH", "1")
    data = make_folder(env / "data" / "colours", per_class=6)
    sessions = []
    for _ in range(2):
        at = page(app(), "data")
        at.radio(key="d_source").set_value("server").run()
        at.selectbox(key="d_folder").set_value("colours").run()
        at.button(key="d_use_folder").click().run()
        page(at, "model")
        at.selectbox(key="m_augment").set_value("light").run()
        at.number_input(key="m_epochs").set_value(30).run()
        page(at, "train").button(key="t_start").click().run()
        sessions.append(at)
    ids = [str(at.query_params["run"]).strip("[]'") for at in sessions]
    assert ids[0] != ids[1] and len(list((env / "runs").glob("2*"))) == 2
    from tl_core.launcher import stop
    from tl_core.runs import RunDir, run_state

    runs = [RunDir(env / "runs" / i) for i in ids]
    held(runs[0], 1)  # the first run holds the only training slot
    assert run_state(runs[1]) == "queued"
    sessions[1].run()
    assert any("Waiting for a free training slot" in i.value for i in sessions[1].info)
    for r in runs:
        stop(r)
    assert data.exists()


@pytest.mark.slow
def test_data_page_measures_and_can_adopt_the_measurement(env):
    at = page(app(), "data")
    at.button(key="d_use_sample").click().run()
    at.button(key="d_measure").click().run()
    assert not at.exception
    assert any("Measured scenario: **3**" in i.value for i in at.info)
    at.button(key="d_use_measured").click().run()
    page(at, "plan")
    assert at.radio(key="q_similarity").value == "different"
    assert any("Scenario 3" in s.value for s in at.subheader)


@pytest.mark.slow
def test_model_page_preflight_times_real_batches_and_offers_the_cache(env):
    at = page(app(), "data")
    at.button(key="d_use_sample").click().run()
    page(at, "model")
    # Head only with strong augmentation for 200 epochs: the frozen network re-runs on every image of
    # every epoch (minutes on any CPU), against one pass in the cached mode.
    at.slider(key="m_frozen").set_value(18).run()
    at.selectbox(key="m_augment").set_value("strong").run()
    at.number_input(key="m_epochs").set_value(200).run()
    at.button(key="m_preflight").click().run()
    assert not at.exception
    assert any("Expected duration" in i.value and "training step" in i.value for i in at.info)
    assert any("cached-feature mode" in w.value for w in at.warning)
    at.button(key="m_use_cache").click().run()
    assert at.selectbox(key="m_augment").value == "none"


def test_data_page_imports_an_open_data_set(env):
    from test_opendata import fake_mnist

    fake_mnist(env / "cache" / "datasets", "MNIST", per_class=2)  # torchvision's files, already downloaded
    at = page(app(), "data")
    at.radio(key="d_source").set_value("open").run()
    at.selectbox(key="d_open").set_value("mnist").run()
    at.number_input(key="d_open_n").set_value(0).run()
    at.button(key="d_open_go").click().run()
    assert not at.exception and not at.error
    assert (env / "data" / "mnist" / "train").is_dir()
    assert any("10 classes, 40 usable images" in m.value for kind in ("subheader", "markdown")
               for m in getattr(at, kind))


@pytest.mark.slow
def test_resume_button_continues_an_interrupted_run(env, monkeypatch):
    from tl_core.config import TrainConfig
    from tl_core.launcher import launch
    from tl_core.runs import run_state

    monkeypatch.setenv("TL_TEST_HOLD_AFTER_EPOCH", "2")
    cfg = TrainConfig(data=str(make_folder(env / "data" / "colours", per_class=6)), scenario=1, augment="light",
                      epochs=4, batch_size=8, patience=0, cache_dir=str(env / "cache"))
    run = launch(cfg, env / "runs")
    held(run, 2)
    os.killpg(run.status()["pid"], signal.SIGKILL)
    wait_for(lambda: run_state(run) == "interrupted", 30, "the killed run to show as interrupted")
    monkeypatch.delenv("TL_TEST_HOLD_AFTER_EPOCH")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["run"] = run.id
    at.switch_page("pages/train.py").run()
    assert any("Resume continues" in w.value for w in at.warning)
    at.button(key="t_resume").click().run()
    assert not at.exception

    def done():
        at.run()
        return any("Done in" in c.value for c in at.caption)

    wait_for(done, 240, "the resumed run to finish on the Train page", poll=1.0)
    epochs = [m["epoch"] for m in run.metrics() if m["kind"] == "epoch"]
    assert epochs == [1, 2, 3, 4] and run_state(run) == "succeeded"


@pytest.mark.slow
def test_predicting_the_same_photo_twice_shows_both(env):
    run = _trained_run(env)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["run"] = run.id
    at.switch_page("pages/predict.py").run()
    photo = next((env / "data" / "colours" / "test" / "red").glob("*.jpg"))
    other = next((env / "data" / "colours" / "test" / "green").glob("*.jpg"))
    files = [(photo.name, photo.read_bytes(), "image/jpeg")] * 2 + [(other.name, other.read_bytes(), "image/jpeg")]
    at.file_uploader(key="p_files").set_value(files).run()
    assert not at.exception, [e.value for e in at.exception]
    assert sum(m.value.startswith("**red**") for m in at.markdown) == 2
    assert sum(m.value.startswith("**green**") for m in at.markdown) == 1


def test_a_run_that_is_only_starting_is_not_called_queued(env):
    import subprocess
    import sys

    from tl_core.runs import RunDir

    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-m", "tl_core", "train"])
    try:
        runs = env / "runs"
        mine = RunDir(runs / "20260101-000002-run-bbbbbb")
        mine.path.mkdir(parents=True)
        (mine.path / "config.json").write_text(json.dumps({"data": "/x/y", "backbone": "efficientnet_lite0"}))
        mine.write_status(state="queued", pid=alive.pid, queued_at=time.time())
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.query_params["run"] = mine.id
        at.switch_page("pages/train.py").run()
        assert not any("Waiting for a free training slot" in i.value for i in at.info)  # nothing else trains
        other = RunDir(runs / "20260101-000001-run-aaaaaa")
        other.path.mkdir()
        (other.path / "config.json").write_text("{}")
        other.write_status(state="running", pid=alive.pid)
        at.run()
        assert any("Waiting for a free training slot" in i.value for i in at.info)
    finally:
        alive.kill()
        alive.wait()


def _estimates(at) -> list[str]:
    return [i.value for i in at.info if "Estimated training time" in i.value or "Expected duration" in i.value]


@pytest.mark.slow
def test_model_page_shows_one_time_estimate_and_train_shows_the_real_time_beside_it(env):
    at = page(app(), "data")
    at.button(key="d_use_sample").click().run()
    page(at, "model")
    assert len(_estimates(at)) == 1  # from the measured speed
    at.number_input(key="m_epochs").set_value(2).run()
    at.button(key="m_preflight").click().run()
    assert len(_estimates(at)) == 1, _estimates(at)  # the pre-flight replaces it, never a second one
    page(at, "train")
    at.button(key="t_start").click().run()
    run = next((env / "runs").iterdir())
    assert json.loads((run / "status.json").read_text())["estimated_seconds"] > 0
    wait_for(lambda: at.run() and any("Done in" in s.value for s in [*at.caption, *at.success]), 300, "the run")
    done = next(s.value for s in [*at.caption, *at.success] if "Done in" in s.value)
    assert "estimated" in done, done


@pytest.mark.slow
def test_outcome_first_on_train_and_evaluate_with_steps_that_apply(env):
    run = _trained_run(env)
    ev = json.loads((run.path / "eval.json").read_text())
    n, right = ev["test"]["n"], round(ev["test"]["accuracy"] * ev["test"]["n"])
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["run"] = run.id
    at.session_state["measured"] = (str(env / "data" / "colours"), {"scenario": 3})
    at.switch_page("pages/train.py").run()
    sentence = f"{right} of {n} test photos right"
    verdicts = [e.value for e in [*at.success, *at.warning, *at.error] if sentence in e.value]
    assert len(verdicts) == 1, [e.value for e in [*at.success, *at.warning, *at.error]]
    assert not any("Diagnosis" in i.value for i in at.info)  # the old diagnosis is detail now, not a verdict
    records = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    from tl_core.diagnose import epochs_total, overall_epoch

    best = f"epoch {overall_epoch(records, ev['best_stage'], ev['best_epoch'])} of {epochs_total(records)}"
    assert any(best in c.value for c in at.caption), [c.value for c in at.caption]
    page(at, "evaluate")
    assert any(sentence in e.value for e in [*at.success, *at.warning, *at.error])
    assert any(best in c.value for c in at.caption), [c.value for c in at.caption]  # the same numbering
    assert ev["test"]["accuracy"] < 0.9  # the mislabelled photo: not "good", so the measured scenario is offered
    at.button(key="o_scenario").click().run()  # a step that trains again launches the changed run
    assert not at.exception
    new = [p for p in (env / "runs").iterdir() if p.name != run.id]
    assert len(new) == 1 and json.loads((new[0] / "config.json").read_text())["scenario"] == 3
    assert at.query_params["run"] in (new[0].name, [new[0].name])


def test_what_a_page_run_held_is_freed_by_the_collection_at_most_once_a_minute():
    """Streamlit's collection after every run is off (it cost ~300 ms a frame): the app's own, on a
    full page run at most once a minute, frees a page namespace's reference cycle."""
    import gc
    import weakref

    from ui import common

    class Held:  # what a page's namespace holds, e.g. an uploaded photo
        pass

    def page_run():
        namespace = {"photo": Held()}
        namespace["self"] = namespace  # a page namespace and its functions: a cycle
        return weakref.ref(namespace["photo"])

    gc.disable()  # only the app's collection may free it in this test
    try:
        common._last_gc[0] = common.time.monotonic()
        held = page_run()
        common.collect_garbage()
        assert held() is not None  # collected less than a minute ago: not again
        common._last_gc[0] -= common.GC_EVERY_SECONDS
        common.collect_garbage()
        assert held() is None
    finally:
        gc.enable()
