"""Web export, int8 and shared bundles, without a browser (test_web_browser.py opens the page)."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import zipfile

import numpy as np
import onnx
import pytest
from conftest import ROOT, run_cli
from streamlit.testing.v1 import AppTest

from tl_core import quantize
from tl_core.errors import ConfigError
from tl_core.export import export_run, zip_bundle
from tl_core.predict import Predictor
from tl_core.serving import BundlePredictor, open_predictor
from tl_core.sharing import publish_web, unpack_bundle
from tl_core.webexport import STRINGS, WEB_FILES

pytestmark = pytest.mark.slow  # exports (and the session's trained run) take tens of seconds here


@pytest.fixture()
def web(web_export):
    return web_export


def test_web_folder_is_an_offline_page_and_an_onnx_bundle(web, trained_run, image_folder):
    out, info = web
    assert info["format"] == "web" and {p.name for p in out.iterdir()} >= {*WEB_FILES, "model.onnx", "bundle.json"}
    html = (out / "index.html").read_text()
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts and all("type=" not in s for s in scripts)  # classic scripts: file:// refuses modules
    page_code = html + (out / "app.js").read_text() + (out / "preprocess.js").read_text()
    assert "fetch(" not in page_code and "http://" not in page_code and "https://" not in page_code
    model_js = (out / "model.js").read_text()
    assert base64.b64decode(model_js.split('"')[1]) == (out / "model.onnx").read_bytes()
    payload = json.loads((out / "bundle.js").read_text().removeprefix("window.TL_BUNDLE=").rstrip(";\n"))
    assert payload["info"]["labels"] == ["blue", "green", "red"] and "calibration" in payload["info"]
    assert set(payload["strings"]) == {"en", "ko"}
    worded = [k for k, v in STRINGS.items() if re.search(r"[a-z]{3}", re.sub(r"\{[^}]*\}", "", v))]
    untranslated = [k for k in worded if payload["strings"]["ko"][k] == payload["strings"]["en"][k]]
    assert not untranslated
    # The folder is also an ONNX bundle: the app's answers within 1e-4.
    images = sorted(image_folder.rglob("*.jpg"))[::4]
    a, b = Predictor.from_run(trained_run.path).probs(images), open_predictor(out).probs(images)
    assert float((a - b).abs().max()) <= 1e-4 and "## Web page" in (out / "README.md").read_text()


def test_damaged_runtime_is_refused_with_the_fix(web, trained_run, tmp_path, monkeypatch):
    from tl_core import webexport

    vendor = tmp_path / "vendor"
    shutil.copytree(webexport.VENDOR, vendor)
    (vendor / webexport.RUNTIME_JS).write_text("// tampered")
    monkeypatch.setattr(webexport, "VENDOR", vendor)
    with pytest.raises(Exception, match="checksums.*git checkout -- vendor"):
        export_run(trained_run.path, "web", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_int8_is_measured_side_by_side_and_smaller(trained_run, image_folder, tmp_path):
    info = export_run(trained_run.path, "onnx", tmp_path / "int8", quantize="int8")
    q = info["quantization"]
    assert q["fp32"]["images"] == q["int8"]["images"] > 0
    assert q["int8"]["bytes"] * 2.5 < q["fp32"]["bytes"] and q["size_ratio"] > 2.5
    assert q["loss_points"] <= 1 and not q["accepted_loss"] and q["int8"]["images_per_second"] > 0
    ops = {n.op_type for n in onnx.load(str(tmp_path / "int8" / "model.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and "Softmax" in ops
    probs = BundlePredictor(tmp_path / "int8").probs(sorted(image_folder.rglob("*.jpg"))[:3])
    assert np.allclose(probs.sum(1).numpy(), 1, atol=1e-4)  # a float softmax, not steps of 1/255
    assert "int8 model" in (tmp_path / "int8" / "README.md").read_text()


def test_int8_that_loses_accuracy_is_refused_unless_accepted(trained_run, tmp_path, monkeypatch):
    """Calibrating on blank images gives activation ranges that clip every real photo: a real loss."""
    real = quantize.run_images

    def blank_calibration(run, pre, part, limit):
        images, labels = real(run, pre, part, limit)
        return (np.full_like(images, 128), labels) if part == "train" else (images, labels)

    monkeypatch.setattr(quantize, "run_images", blank_calibration)
    with pytest.raises(quantize.QuantizationLoss, match=r"loses .* points of test accuracy .*--accept-loss") as err:
        export_run(trained_run.path, "web", tmp_path / "bad", quantize="int8")
    assert err.value.comparison["loss_points"] > 1 and not (tmp_path / "bad").exists()
    info = export_run(trained_run.path, "web", tmp_path / "bad", quantize="int8", accept_loss=True)
    assert info["quantization"]["accepted_loss"] and (tmp_path / "bad" / "index.html").is_file()


def test_cli_exports_web_and_predicts_from_the_zip(trained_run, image_folder, tmp_path):
    out = tmp_path / "cli-web"  # int8 itself is measured in-process above; here the command line
    r = run_cli("export", str(trained_run.path), "--format", "web", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["format"] == "web" and (out / "index.html").is_file()
    (tmp_path / "shared.zip").write_bytes(zip_bundle(out))
    photo = next((image_folder / "red").glob("*.jpg"))
    r = run_cli("predict", str(tmp_path / "shared.zip"), str(photo), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])[0]["top"][0]["label"] == "red"
    r = run_cli("export", str(trained_run.path), "--format", "torchscript", "--quantize", "int8", "--out",
                str(tmp_path / "ts"))
    assert r.returncode == 2 and "int8 works for the onnx and web formats" in r.stderr


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("entries, message", [
    ({"b/README.md": b"x"}, "has no bundle.json"),
    ({"b/bundle.json": b"{}", "b/evil.sh": b"rm -rf /"}, "files an export never writes"),
    ({"b/bundle.json": b"{}", "../model.onnx": b"x"}, "several folders"),
    ({"b/bundle.json": b"{}", "b/sub/model.onnx": b"x"}, "several folders"),
])
def test_shared_zip_hostile_forms_are_refused(entries, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        unpack_bundle(_zip(entries), tmp_path / "x", "shared.zip")
    with pytest.raises(ConfigError, match="not a zip file"):
        unpack_bundle(b"MZ not a zip", tmp_path / "y", "shared.zip")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("damage, message", [
    (lambda info, folder: (folder / "model.onnx").write_bytes(b"not a protobuf"), "not a model onnxruntime can open"),
    (lambda info, folder: info.pop("labels"), "not a valid bundle description"),
    (lambda info, folder: info.update(labels=[1, 2]), "not a valid bundle description"),
    (lambda info, folder: info.update(preprocess={}), "not a valid bundle description"),
    (lambda info, folder: info.update(labels=["only one"]), "one probability per label"),
])
def test_a_damaged_shared_bundle_is_one_clear_error(web, tmp_path, damage, message):
    from tl_core.errors import TLError

    out, _info = web
    folder = tmp_path / "b"
    shutil.copytree(out, folder)
    info = json.loads((folder / "bundle.json").read_text())
    damage(info, folder)
    (folder / "bundle.json").write_text(json.dumps(info))
    with pytest.raises(TLError, match=message):
        BundlePredictor(folder)


def test_shared_torchscript_zip_opens_only_when_trusted(trained_run, tmp_path):
    export_run(trained_run.path, "torchscript", tmp_path / "ts")
    folder = unpack_bundle(zip_bundle(tmp_path / "ts"), tmp_path / "in", "ts.zip")
    with pytest.raises(ConfigError, match="TorchScript files run their own code"):
        BundlePredictor(folder)


def test_publish_web_copies_the_page_under_an_unguessable_name(web, tmp_path):
    out, _info = web
    first = publish_web(out, tmp_path / "static")
    assert re.fullmatch(rf"web/{re.escape(out.parent.name)}-[0-9a-f]{{16}}/index\.html", first), first
    page = tmp_path / "static" / first
    assert page.is_file() and (page.parent / "model.js").is_file() and not (page.parent / "model.onnx").exists()
    second = publish_web(out, tmp_path / "static", old=first)
    assert not page.exists() and (tmp_path / "static" / second).is_file()


@pytest.mark.parametrize("forged", ["web/../index.html", "web/..", "../web/x-0123456789abcdef/index.html",
                                    "web/x-0123456789abcdef/../../index.html", "/etc/passwd", "web/keep/index.html"])
def test_a_forged_published_path_deletes_nothing(web, tmp_path, forged):
    out, _info = web
    static = tmp_path / "static"
    (static / "web" / "keep").mkdir(parents=True)
    (static / "web" / "keep" / "index.html").write_text("another run's page")
    (static / "precious.txt").write_text("x")
    publish_web(out, static, old=forged)
    assert (static / "precious.txt").is_file() and (static / "web" / "keep" / "index.html").is_file()


def test_deleting_a_run_or_clearing_a_workspace_unpublishes_its_page(web, env, monkeypatch):
    from tl_core import settings, workspaces
    from tl_core.launcher import delete_run
    from tl_core.runs import RunDir
    from tl_core.sharing import publish_run, published_page

    out, _info = web
    monkeypatch.setenv("TL_CLASSROOM_DIR", str(env / "classroom"))
    ws = workspaces.Workspace(env / "classroom" / "workspaces" / "ws-0123456789ab")
    pages, runs_made = [], []
    for runs in (env / "runs", ws.runs_dir):
        run = RunDir.create(runs)
        (run.path / "status.json").write_text('{"state": "succeeded"}')
        (run.path / "config.json").write_text('{"data": "d"}')
        shutil.copytree(out, run.path / "export-web")
        pages.append(settings.static_root() / publish_run(run))
        runs_made.append(run)
        assert published_page(run) and pages[-1].is_file()
    delete_run(runs_made[0])
    assert not pages[0].parent.exists() and pages[1].is_file()
    workspaces.clear(ws)
    assert not pages[1].parent.exists() and not list((settings.static_root() / "web").iterdir())


def test_predict_page_opens_a_shared_zip(env, web, image_folder):
    out, _info = web
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/predict.py").run()
    at.selectbox(key=next(k for k in (s.key for s in at.selectbox) if k and "p_model" in k)).set_value("shared").run()
    at.file_uploader(key="p_bundle").set_value(("from-a-friend.zip", zip_bundle(out), "application/zip")).run()
    assert not at.exception and any("blue, green, red" in c.value for c in at.caption)
    photo = next((image_folder / "green").glob("*.jpg"))
    at.file_uploader(key="p_files").set_value([(photo.name, photo.read_bytes(), "image/jpeg")]).run()
    assert not at.exception and any("green" in m.value for m in at.markdown)
