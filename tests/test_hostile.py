"""Fault injection and hostile input: bad images, bad zips, escapes, unpickling, full disks,
killed and concurrent users. Each case asserts the message, the exit code or the files on disk."""

from __future__ import annotations

import json
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from conftest import make_folder, run_cli
from hostile import bomb_png, jpeg_bytes, make_hostile_folder, zip_bytes
from tl_core import checkpoints as ckpt
from tl_core.data import scan_folder, validate
from tl_core.errors import DatasetError, RunError
from tl_core.imaging import ImageReadError, load_rgb
from tl_core.zips import extract_images


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile") / "data"
    return root, make_hostile_folder(root)


def test_every_odd_image_is_kept_or_reported_by_name(hostile):
    root, files = hostile
    report, clean = validate(scan_folder(root))
    used = {it.path for it in clean.items}
    assert {str(p) for p in files["kept"]} <= used
    for bad in files["skipped"]:
        assert str(bad) in report.unreadable
        msg = next(i.message for i in report.issues if i.code == "unreadable" and str(bad) in i.paths)
        assert str(bad.relative_to(root)) in msg and str(root) not in msg  # named as the user knows it
    reasons = {Path(p).name: next(i.message for i in report.issues if p in i.paths) for p in report.unreadable}
    assert "empty" in reasons["empty.jpg"] and "not an image" in reasons["notes.jpg"]
    assert "too large" in reasons["bomb.png"] and "truncated" in reasons["truncated.jpg"]
    assert not any(".DS_Store" in p or "__MACOSX" in p or "._red" in p for p in used)
    odd = next(i for i in report.issues if i.code == "odd_shape")
    assert any("one_pixel" in p for p in odd.paths) and any("very_wide" in p for p in odd.paths)
    assert report.ok and report.classes == ["red", "파랑 blue"]


def test_converted_images_are_plain_rgb_and_tensors_have_the_model_size(hostile):
    from tl_core.backbones import get_backbone
    from tl_core.transforms import eval_transform

    root, files = hostile
    pre = get_backbone("efficientnet_lite0").preprocess
    for path in files["kept"]:
        img = load_rgb(path)
        assert img.mode == "RGB"
        assert eval_transform(pre)(img).shape == (3, 224, 224)
    with pytest.raises(ImageReadError, match="too large"):
        load_rgb(bomb_png())


def test_training_proceeds_with_what_is_usable(tmp_path, hostile, cache_dir):
    root, _ = hostile
    proc = run_cli("train", "--data", str(root), "--scenario", "1", "--epochs", "3", "--runs-dir",
                   str(tmp_path / "runs"), "--cache-dir", str(cache_dir), "--json")
    assert proc.returncode == 0, proc.stderr[-1500:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    report = json.loads((Path(out["run_dir"]) / "report.json").read_text())
    assert len(report["unreadable"]) == 6


def test_class_names_that_differ_only_in_case_or_spaces_are_flagged(tmp_path):
    root = make_folder(tmp_path / "d", per_class=3, classes=("red", "blue"))
    os.rename(root / "blue", root / "Red ")
    report, _ = validate(scan_folder(root))
    assert any(i.code == "similar_class_names" and "'Red '" in i.message for i in report.issues)


@pytest.mark.parametrize("layout,expected", [
    ({"red": 5, "blue": 0}, "class 'blue' has no readable image"),
    ({"red": 5}, "needs at least 2"),
])
def test_refusals_say_what_to_do(tmp_path, layout, expected):
    root = tmp_path / "d"
    for name, n in layout.items():
        (root / name).mkdir(parents=True)
        if n:
            make_folder(root, per_class=n, classes=(name,))
    proc = run_cli("train", "--data", str(root), "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr


def test_class_with_a_single_image_is_a_warning_not_a_refusal(tmp_path):
    root = make_folder(tmp_path / "d", per_class=6, classes=("red", "blue"))
    make_folder(root, per_class=1, classes=("green",))
    report, _ = validate(scan_folder(root))
    assert report.ok and any(i.code == "few_images" and "'green'" in i.message for i in report.issues)


def test_zip_escapes_links_and_junk_are_skipped(tmp_path):
    data = zip_bytes(
        [("set/red/a.jpg", jpeg_bytes("red", 1)), ("set/blue/b.jpg", jpeg_bytes("blue", 2)),
         ("../escape.jpg", jpeg_bytes("red", 3)), ("/abs/evil.jpg", jpeg_bytes("red", 4)),
         ("set/red/../../../../up.jpg", jpeg_bytes("red", 5)), ("set/inner.zip", b"PK\x03\x04"),
         ("__MACOSX/set/._a.jpg", b"x"), ("set/.hidden.jpg", b"x"), ("set/readme.txt", b"hi")],
        symlinks={"set/red/link.jpg": "/etc/passwd"})
    dest = tmp_path / "uploads" / "u1"
    folder, skipped = extract_images(data, dest)
    assert folder == dest.resolve() / "set"
    written = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert written == ["set/blue/b.jpg", "set/red/a.jpg"]
    text = "\n".join(skipped)
    for name, why in [("../escape.jpg", "leaves"), ("/abs/evil.jpg", "absolute"), ("up.jpg", "leaves"),
                      ("inner.zip", "nested zip"), ("link.jpg", "symbolic link"), ("readme.txt", "not an image")]:
        assert name in text and why in text, (name, text)
    assert not (tmp_path / "escape.jpg").exists() and not (tmp_path / "uploads" / "escape.jpg").exists()


def test_zip_bombs_and_non_zips_are_refused_before_writing(tmp_path):
    many = zip_bytes([(f"c/{i}.jpg", b"x") for i in range(30)])
    with pytest.raises(DatasetError, match="30 entries"):
        extract_images(many, tmp_path / "a", max_files=20)
    big = zip_bytes([("c/big.jpg", b"\0" * 5_000_000)])  # compresses to a few KB
    with pytest.raises(DatasetError, match="uncompressed"):
        extract_images(big, tmp_path / "b", max_bytes=1_000_000)
    assert not (tmp_path / "b").exists()  # refused before anything was written
    with pytest.raises(DatasetError, match="not a valid zip"):
        extract_images(b"%PDF-1.4 this is not a zip", tmp_path / "c")
    with pytest.raises(DatasetError, match="no image files"):
        extract_images(zip_bytes([("notes.txt", b"hi")]), tmp_path / "d")


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_checkpoints_are_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pt"
    with open(bad, "wb") as fh:
        pickle.dump({"model": _Evil(marker)}, fh)
    with pytest.raises(RunError, match="cannot read checkpoint"):
        ckpt.load_checkpoint(bad)
    torch.save({"model": _Evil(marker)}, tmp_path / "evil2.pt")
    with pytest.raises(RunError):
        ckpt.load_checkpoint(tmp_path / "evil2.pt")
    assert not marker.exists()


def test_full_disk_fails_clearly_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import errno

    target = tmp_path / "checkpoints" / "last.pt"
    ckpt.save_atomic({"epoch": 1, "w": torch.ones(3)}, target)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt, "open", full, raising=False)
    with pytest.raises(RunError, match="disk is full.*previous checkpoint is intact"):
        ckpt.save_atomic({"epoch": 2, "w": torch.zeros(3)}, target)
    monkeypatch.undo()
    assert ckpt.load_checkpoint(target)["epoch"] == 1
    assert [p.name for p in target.parent.iterdir()] == ["last.pt"]


def test_full_disk_during_training_marks_the_run_failed(tmp_path, image_folder, cache_dir, monkeypatch):
    import errno

    from tl_core.cli import main
    from tl_core.runs import RunDir

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt, "open", full, raising=False)
    code = main(["train", "--data", str(image_folder), "--scenario", "1", "--epochs", "2", "--runs-dir",
                 str(tmp_path / "runs"), "--cache-dir", str(cache_dir)])
    assert code == 2
    run = RunDir(next((tmp_path / "runs").glob("2*")))
    assert run.status()["state"] == "failed" and "disk is full" in run.status()["error"]


def test_twenty_concurrent_predictions_match_sequential_ones(image_folder, trained_run):
    from tl_core.predict import Predictor

    predictor = Predictor.from_run(trained_run.path)
    images = [it.path for it in scan_folder(image_folder).items][:20]
    expected = [predictor.predict([p], 3)[0] for p in images]
    with ThreadPoolExecutor(max_workers=20) as pool:
        got = list(pool.map(lambda p: predictor.predict([p], 3)[0], images))
    for e, g in zip(expected, got):
        assert [t["label"] for t in e] == [t["label"] for t in g]
        assert all(abs(a["prob"] - b["prob"]) < 1e-5 for a, b in zip(e, g))
