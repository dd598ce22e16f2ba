"""The faults of the independent review (hardening issue), one test each; every test failed on
the code before its fix. Browser-free: core calls, the CLI in a subprocess, and AppTest."""

from __future__ import annotations

import ast
import io
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import PYTHON, ROOT, make_folder, run_cli, serving, wait_for
from hostile import jpeg_bytes, zip_bytes
from tl_core.errors import ConfigError, DatasetError, RunError


def page(at: AppTest, name: str) -> AppTest:
    at.switch_page(f"pages/{name}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def fake_run(runs: Path, run_id: str, **status) -> Path:
    path = runs / run_id
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"data": "/x/y", "backbone": "efficientnet_lite0", "scenario": 1}))
    (path / "status.json").write_text(json.dumps({"state": "succeeded", **status}))
    return path


def copy_run(run, tmp_path: Path) -> Path:
    dest = tmp_path / "runs" / run.id
    shutil.copytree(run.path, dest)
    return dest


# 1 -------------------------------------------------------------------------------------------
def test_delete_confirmation_is_tied_to_the_selected_run(env):
    runs = env / "runs"
    a, c = fake_run(runs, "20260101-000000-run-aaaaaa"), fake_run(runs, "20260101-000001-run-cccccc")
    at = page(AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run(), "runs")
    at.selectbox(key="r_victim").set_value(c.name).run()
    at.checkbox(key=f"r_confirm.{c.name}").check().run()
    at.selectbox(key="r_victim").set_value(a.name).run()
    assert at.button(key="r_delete").disabled, "the tick for cccccc must not arm Delete for aaaaaa"
    at.checkbox(key=f"r_confirm.{a.name}").check().run()
    at.button(key="r_delete").click().run()
    assert not a.exists() and c.is_dir()
    at.selectbox(key="r_victim").set_value(c.name).run()
    assert at.button(key="r_delete").disabled


# 2 -------------------------------------------------------------------------------------------
def test_changing_the_scenario_clears_a_stale_freeze_override(env):
    from ui.common import config_from_wizard

    at = page(AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run(), "model")
    at.slider(key="m_frozen").set_value(9).run()
    assert config_from_wizard(at.session_state["wizard"]).frozen_groups == 9
    page(at, "plan")
    at.radio(key="q_size").set_value("large").run()
    at.radio(key="q_similarity").set_value("different").run()
    cfg = config_from_wizard(at.session_state["wizard"])
    assert cfg.scenario == 4 and cfg.frozen_groups is None and cfg.frozen_fraction is None
    page(at, "model")
    assert at.slider(key="m_frozen").value == 0


# 3 -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_killed_lab_leaves_no_zombie_scenario_run(env):
    from tl_core.launcher import launch_lab, stop
    from tl_core.runs import RunDir, list_runs, run_state

    data = make_folder(env / "data" / "colours", per_class=8)
    lab = launch_lab(str(data), env / "runs", epochs=1)
    deadline = time.time() + 240
    child = None
    while time.time() < deadline and child is None and run_state(lab) in ("queued", "running"):
        current = (json.loads((lab.path / "lab.json").read_text()) if (lab.path / "lab.json").is_file()
                   else {}).get("current")
        if current and RunDir(current["run_dir"]).status().get("pid"):
            child = RunDir(current["run_dir"])
        time.sleep(0.2)
    assert child is not None, (lab.path / "stdout.log").read_text()
    os.killpg(os.getpgid(lab.status()["pid"]), signal.SIGKILL)
    deadline = time.time() + 30
    while run_state(child) != "interrupted" and time.time() < deadline:
        time.sleep(0.2)
    assert run_state(child) == "interrupted" and run_state(lab) == "interrupted"
    assert stop(child, grace=0.1) == "stopped"
    assert {r.id for r in list_runs(env / "runs")} >= {lab.id, child.id}  # labs are listed too


def test_a_run_marked_running_without_a_process_is_interrupted(tmp_path):
    from tl_core.runs import RunDir, run_state

    run = RunDir(fake_run(tmp_path, "old-zombie", state="running"))
    assert run_state(run) == "interrupted"


def test_a_training_that_raises_outside_the_cli_is_marked_failed(tmp_path, image_folder, monkeypatch):
    from tl_core import train
    from tl_core.config import TrainConfig
    from tl_core.runs import RunDir, lifecycle, run_state

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(train, "build_model", boom)
    run = RunDir.create(tmp_path / "runs")
    cfg = TrainConfig(data=str(image_folder), scenario=1, cache_dir=str(tmp_path / "cache"))
    cfg.save(run.config_file)
    with pytest.raises(RuntimeError):
        with lifecycle(run):
            train.train_run(run, cfg)
    status = run.status()
    assert status["state"] == "failed" and "disk on fire" in status["error"] and status["pid"] == os.getpid()
    assert run_state(run) == "failed"


def test_runs_page_lists_labs(env):
    lab = env / "runs" / "20260101-000000-lab-abcdef"
    lab.mkdir(parents=True)
    (lab / "status.json").write_text(json.dumps({"state": "succeeded"}))
    (lab / "lab.json").write_text(json.dumps({"data": "/x/sign", "scenarios": []}))
    fake_run(env / "runs", "20260101-000001-run-cccccc")
    at = page(AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run(), "runs")
    assert lab.name in at.selectbox(key="r_victim").options


# 4 -------------------------------------------------------------------------------------------
def test_no_module_assigns_to_the_translation_function():
    offenders = []
    for path in [*ROOT.glob("tl_core/**/*.py"), *ROOT.glob("pages/*.py"), *ROOT.glob("ui/*.py"), ROOT / "app.py",
                 *ROOT.glob("benchmarks/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            bound = (isinstance(node, ast.Name) and node.id == "_" and isinstance(node.ctx, ast.Store)
                     or isinstance(node, ast.ExceptHandler) and node.name == "_"
                     or isinstance(node, ast.arg) and node.arg == "_")
            if bound:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, "`_` is the translation function; name throwaway values otherwise: " + ", ".join(offenders)


def test_evaluating_a_run_without_a_test_split_says_so(trained_run, tmp_path):
    from tl_core.evaluate import evaluate_run

    path = copy_run(trained_run, tmp_path)
    split = json.loads((path / "split.json").read_text())
    split["test"] = []
    (path / "split.json").write_text(json.dumps(split))
    with pytest.raises(DatasetError, match="no test split"):
        evaluate_run(path)


def test_measuring_a_folder_with_one_class_says_so(tmp_path):
    from tl_core.measure import measure

    data = make_folder(tmp_path / "one", per_class=4, classes=("red",))
    with pytest.raises(DatasetError, match="at least 2 classes"):
        measure(str(data))


# 5 -------------------------------------------------------------------------------------------
def test_cli_prints_the_traceback_of_an_unexpected_error(tmp_path):
    code = ("import tl_core.commands as c, sys\n"
            "def cmd_status(args):\n    raise ZeroDivisionError('deep inside')\n"
            "c.cmd_status = cmd_status\n"
            "from tl_core.cli import main\nsys.exit(main(['status', '.']))\n")
    out = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "in cmd_status" in out.stderr and "deep inside" in out.stderr


# 6 -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_torchscript_bundles_need_explicit_trust(trained_run, tmp_path):
    from tl_core.export import export_run
    from tl_core.serving import open_predictor

    bundle = tmp_path / "ts"
    export_run(trained_run.path, "torchscript", bundle)
    image = str(next(Path(json.loads(trained_run.config_file.read_text())["data"]).rglob("*.jpg")))
    with pytest.raises(ConfigError, match="--trust"):
        open_predictor(bundle)
    assert open_predictor(bundle, trust=True).predict([image])[0][0]["label"]
    refused = run_cli("predict", str(bundle), image)
    assert refused.returncode == 2 and "--trust" in refused.stderr
    assert run_cli("predict", str(bundle), image, "--trust").returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("model_file", ["../outside.onnx", "/etc/passwd", "sub/../../outside.onnx"])
def test_a_bundle_cannot_point_outside_its_folder(trained_run, tmp_path, model_file):
    from tl_core.export import export_run
    from tl_core.serving import open_predictor

    bundle = tmp_path / "onnx"
    export_run(trained_run.path, "onnx", bundle)
    shutil.copy(bundle / "model.onnx", tmp_path / "outside.onnx")
    info = json.loads((bundle / "bundle.json").read_text())
    (bundle / "bundle.json").write_text(json.dumps({**info, "model_file": model_file}))
    with pytest.raises(RunError, match="inside the bundle"):
        open_predictor(bundle)


# 7 -------------------------------------------------------------------------------------------
def test_eps_bytes_named_png_never_reach_ghostscript(tmp_path, monkeypatch):
    from PIL import EpsImagePlugin

    from tl_core.imaging import ImageReadError, load_rgb

    reached = []
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: reached.append(1) or 1 / 0)
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n%%EOF\n"
    (tmp_path / "photo.png").write_bytes(eps)
    for source in (eps, tmp_path / "photo.png"):
        with pytest.raises(ImageReadError, match="not an image"):
            load_rgb(source)
    assert not reached


# 8 -------------------------------------------------------------------------------------------
def test_links_inside_a_data_folder_that_leave_it_are_not_read(tmp_path):
    from tl_core.data import scan_folder, validate

    outside = make_folder(tmp_path / "outside", per_class=6)
    data = make_folder(tmp_path / "data", per_class=6, classes=("red", "green"))
    os.symlink(outside / "blue", data / "blue")  # a class folder leading out
    os.symlink(outside / "red" / "red_0.jpg", data / "red" / "stolen.jpg")  # an image leading out
    os.symlink(data / "red" / "red_1.jpg", data / "green" / "inside_link.jpg")  # stays inside: fine
    report, clean = validate(scan_folder(data))
    assert clean.classes == ["green", "red"]
    used = {it.path for it in clean.items}
    assert not any("stolen" in p for p in used) and any("inside_link" in p for p in used)
    text = json.dumps(report.to_dict())
    assert "blue" in text and "stolen.jpg" in text and "outside the data folder" in text
    # A pre-split data set whose train/ (or test/) is a link to elsewhere is not read either.
    presplit = tmp_path / "presplit"
    make_folder(presplit / "test", per_class=2, classes=("red", "green"))
    os.symlink(outside, presplit / "train")
    report = validate(scan_folder(presplit))[0]
    assert sum(report.counts.values()) == 4 and "train" in json.dumps(report.to_dict()["issues"])


# 9 -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("param", ["run", "lab"])
@pytest.mark.parametrize("value", ["..", ".", "../runs", "%2e%2e", "a/../..", "link"])
def test_run_and_lab_ids_from_the_url_cannot_leave_the_runs_folder(env, param, value):
    from tl_core.paths import run_path

    (env / "runs").mkdir()
    (env / "status.json").write_text(json.dumps({"state": "running"}))  # the runs folder's parent
    (env / "config.json").write_text("{}")
    os.symlink(env, env / "runs" / "link")
    assert run_path(env / "runs", value) is None
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params[param] = value
    at.switch_page("pages/lab.py" if param == "lab" else "pages/train.py").run()
    assert not at.exception
    assert any("Data page first" in i.value for i in at.info)


# 10 ------------------------------------------------------------------------------------------
def _lying_zip() -> bytes:
    data = bytearray(zip_bytes([("set/red/a.jpg", jpeg_bytes("red", 1)), ("set/blue/b.jpg", jpeg_bytes("blue", 2))]))
    i = data.rfind(b"\xff\xd9")  # corrupt the second image's bytes: CRC no longer matches
    data[i - 40:i - 30] = b"\x00" * 10
    return bytes(data)


def _broken_deflate_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("set/red/a.jpg", jpeg_bytes("red", 1) * 3)
    data = bytearray(buf.getvalue())
    i = data.find(b"a.jpg") + 15  # inside the compressed stream
    data[i:i + 20] = b"\xff" * 20
    return bytes(data)


@pytest.mark.parametrize("name,data,message", [
    ("crc", _lying_zip(), "damaged"),
    ("deflate", _broken_deflate_zip(), "damaged"),
    ("long", zip_bytes([("set/red/" + "x" * 300 + ".jpg", jpeg_bytes("red", 1))]), "too long"),
    ("clash", zip_bytes([("set/x.png", jpeg_bytes("red", 1)), ("set/x.png/c.png", jpeg_bytes("red", 2))]),
     "both a file and a folder"),
])
def test_bad_zips_give_a_clear_message_and_leave_no_partial_folder(tmp_path, name, data, message):
    from tl_core.zips import extract_images

    dest = tmp_path / "uploads" / name
    with pytest.raises(DatasetError, match=message):
        extract_images(data, dest)
    assert not dest.exists()
    assert not [p for p in (tmp_path / "uploads").iterdir()] if (tmp_path / "uploads").exists() else True


# 11 ------------------------------------------------------------------------------------------
def test_two_imports_of_the_same_open_data_set_at_once(tmp_path):
    from test_opendata import fake_mnist

    from tl_core.opendata import import_dataset

    fake_mnist(tmp_path / "root", "MNIST", per_class=20)
    results, errors = [], []

    def one():
        try:
            results.append(import_dataset("mnist", tmp_path / "out", tmp_path / "root"))
        except Exception as exc:  # noqa: BLE001 - the test reports every failure
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 2, errors
    assert results[0]["counts"] == results[1]["counts"] == {"train": 200, "test": 200}
    assert len(list((tmp_path / "out" / "train").rglob("*.png"))) == 200
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# 12 ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_web_server_does_not_get_the_training_allocator_setting(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env.update(TL_RUNS_DIR=str(tmp_path / "runs"), TL_DATA_ROOT=str(tmp_path / "data"))
    proc = subprocess.Popen(["bash", "scripts/start.sh", "--server.headless", "true", "--server.address", "127.0.0.1",
                             "--server.port", str(port), "--browser.gatherUsageStats", "false",
                             "--server.fileWatcherType", "none"], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: serving(f"http://127.0.0.1:{port}"), 300, "scripts/start.sh to serve the app")
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        assert b"ui.serve" in Path(f"/proc/{proc.pid}/cmdline").read_bytes()  # Streamlit, started by ui.serve
        assert not any(e.startswith(b"GLIBC_TUNABLES=") for e in environ)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_training_processes_still_get_the_allocator_setting(tmp_path, image_folder, monkeypatch):
    from tl_core.launcher import FAST_MALLOC, process_env

    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    assert process_env()["GLIBC_TUNABLES"] == FAST_MALLOC


# 13 ------------------------------------------------------------------------------------------
def test_feature_caches_are_bounded_in_total_least_recently_used_first(tmp_path, monkeypatch):
    from tl_core.features import prune_cache

    cache = tmp_path / "features"
    cache.mkdir()
    names = {n: f"efficientnet_lite0-{h * 32}.pt" for n, h in [("old", "a"), ("used", "b"), ("new", "c")]}
    for i, name in enumerate(["old", "used", "new"]):
        f = cache / names[name]
        f.write_bytes(b"\0" * 400_000)
        os.utime(f, (1_000_000 + i, 1_000_000 + i))
    os.utime(cache / names["used"], (2_000_000, 2_000_000))  # read recently
    mine = cache / "my_finetuned_model.pt"  # not the cache's: never evicted
    mine.write_bytes(b"\0" * 400_000)
    os.utime(mine, (1, 1))
    removed = prune_cache(cache, max_bytes=900_000)
    assert [p.name for p in removed] == [names["old"]]
    assert sorted(p.name for p in cache.iterdir()) == sorted([names["new"], names["used"], mine.name])


def test_old_uploads_are_removed(tmp_path):
    from tl_core.zips import prune_uploads

    uploads = tmp_path / "uploads"
    for name, age_days in [("old", 10), ("fresh", 1)]:
        d = uploads / name / "red"
        d.mkdir(parents=True)
        (d / "a.jpg").write_bytes(b"x")
        t = time.time() - age_days * 86400
        for p in (d / "a.jpg", d, d.parent):
            os.utime(p, (t, t))
    removed = prune_uploads(uploads, max_age_days=7)
    assert [p.name for p in removed] == ["old"] and sorted(p.name for p in uploads.iterdir()) == ["fresh"]


def test_uploads_a_run_was_trained_on_are_kept(tmp_path):
    from tl_core.runs import data_in_use
    from tl_core.zips import prune_uploads

    uploads = tmp_path / "uploads"
    for name in ("used", "unused"):
        (uploads / name / "set" / "red").mkdir(parents=True)
        os.utime(uploads / name, (1_000_000, 1_000_000))  # long ago
    fake_run(tmp_path / "runs", "20260101-000000-run-aaaaaa")
    config = tmp_path / "runs" / "20260101-000000-run-aaaaaa" / "config.json"
    config.write_text(json.dumps({"data": str(uploads / "used" / "set"), "backbone": "efficientnet_lite0"}))
    removed = prune_uploads(uploads, keep=data_in_use(tmp_path / "runs"))
    assert [p.name for p in removed] == ["unused"] and (uploads / "used" / "set").is_dir()


def test_the_queue_refuses_more_than_its_limit(tmp_path, image_folder, monkeypatch):
    from tl_core.config import TrainConfig
    from tl_core import launcher

    monkeypatch.setenv("TL_MAX_QUEUED", "2")
    started = []
    monkeypatch.setattr(launcher, "start_process", lambda run, *a, **k: started.append(run) or os.getpid())
    cfg = TrainConfig(data=str(image_folder), scenario=1)
    launcher.launch(cfg, tmp_path / "runs")
    launcher.launch(cfg, tmp_path / "runs")
    with pytest.raises(RunError, match="2 runs are already waiting"):
        launcher.launch(cfg, tmp_path / "runs")
    assert len(started) == 2 and len(list((tmp_path / "runs").glob("*/config.json"))) == 2


def test_the_folder_picker_does_not_walk_into_class_folders(tmp_path, monkeypatch):
    from tl_core import paths

    root = tmp_path / "data"
    make_folder(root / "colours", per_class=2)
    deep = root / "colours" / "red" / "deeper" / "deepest"
    deep.mkdir(parents=True)
    outside = make_folder(tmp_path / "elsewhere" / "set", per_class=1)
    os.symlink(outside, root / "linked")
    opened = []
    real = os.scandir
    monkeypatch.setattr(paths.os, "scandir", lambda p=".": opened.append(Path(p)) or real(p))
    folders, skipped = paths.data_folders(root, depth=2)
    assert folders == ["colours", "colours/blue", "colours/green", "colours/red"]
    assert skipped == ["linked"]
    assert all(len(p.relative_to(root).parts) < 2 for p in opened), opened


# 14 ------------------------------------------------------------------------------------------
def test_torch_floor_excludes_releases_with_known_weights_only_bypasses():
    from packaging.version import Version

    import torch

    req = (ROOT / "requirements.txt").read_text()
    floor = re.search(r"^torch>=([\d.]+)", req, re.M)
    assert floor and Version(floor.group(1)) >= Version("2.10"), "CVE-2025-32434, CVE-2026-24747"
    assert Version(torch.__version__.split("+")[0]) >= Version(floor.group(1))


# Also: paths and placeholders users should not see --------------------------------------------
def test_linked_folders_in_the_data_root_are_counted_and_explained(env):
    make_folder(env / "data" / "inside", per_class=3)
    os.symlink(make_folder(env / "other" / "set", per_class=3), env / "data" / "from_other_disk")
    at = page(AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run(), "data")
    at.radio(key="d_source").set_value("server").run()
    text = " ".join(c.value for c in at.caption) + " ".join(i.value for i in at.info)
    assert "1 linked folder" in text and "TL_DATA_ROOT" in text


def test_model_page_table_has_no_raw_none(env):
    at = page(AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run(), "model")
    table = at.dataframe[0].value
    assert not table.isna().any().any() and "None" not in table.astype(str).to_string()
    assert (table["images/s here"] == "not measured yet").all()  # a fresh cache: nothing timed yet


def test_bundles_and_reports_name_the_data_set_not_the_server_path(trained_run, tmp_path):
    from tl_core.data import scan_folder, validate
    from tl_core.export import export_run

    data = json.loads(trained_run.config_file.read_text())["data"]
    bundle = tmp_path / "b"
    export_run(trained_run.path, "onnx", bundle)
    for f in ("bundle.json", "README.md"):
        text = (bundle / f).read_text()
        assert data not in text and str(Path(data).parent) not in text and Path(data).name in text
    broken = make_folder(tmp_path / "server" / "secret" / "mine", per_class=3)
    (broken / "red" / "bad.jpg").write_bytes(b"not an image")
    report = validate(scan_folder(broken))[0].to_dict()
    messages = " ".join(i["message"] for i in report["issues"])
    assert "bad.jpg" in messages and str(tmp_path) not in messages
