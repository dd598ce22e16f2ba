"""Open data sets through torchvision, offline: small files written in the real formats."""

from __future__ import annotations

import json
import pickle
import struct
from urllib.error import URLError

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from tl_core.data import scan_folder, validate
from tl_core.errors import DatasetError
from tl_core.opendata import _folder_name, import_dataset


def write_idx(raw, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """MNIST's IDX files: big-endian magic, counts, then the bytes."""
    raw.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, h, w) + images.tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


def fake_mnist(root, folder: str, per_class: int = 3):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10, dtype=np.uint8), per_class)
    images = rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8)
    for prefix in ("train", "t10k"):
        write_idx(root / folder / "raw", prefix, images, labels)
    return images, labels


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_family_becomes_an_image_folder(tmp_path, name, folder):
    images, labels = fake_mnist(tmp_path / "root", folder)
    events = []
    info = import_dataset(name, tmp_path / "out", tmp_path / "root", progress=lambda *e: events.append(e))
    assert info["counts"] == {"train": 30, "test": 30} and len(info["classes"]) == 10
    report, scan = validate(scan_folder(tmp_path / "out"))
    assert report.ok and len(scan.classes) == 10
    first = tmp_path / "out" / "train" / _folder_name(info["classes"][labels[0]]) / "00000.png"
    assert np.array_equal(np.asarray(Image.open(first)), images[0])  # the very pixels of the file
    assert events[-1] == ("writing test images", 30, 30)
    if name == "fashion-mnist":
        assert "T-shirt_top" in [p.name for p in (tmp_path / "out" / "train").iterdir()]


def fake_cifar(root, hundred: bool, n: int = 12):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    classes = 100 if hundred else 10
    labels = [i % classes for i in range(n)]
    if hundred:
        base = root / "cifar-100-python"
        base.mkdir(parents=True)
        for part in ("train", "test"):
            (base / part).write_bytes(pickle.dumps({"data": data, "fine_labels": labels}))
        (base / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"class {i}" for i in range(100)]}))
    else:
        base = root / "cifar-10-batches-py"
        base.mkdir(parents=True)
        for part in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            (base / part).write_bytes(pickle.dumps({"data": data, "labels": labels}))
        (base / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    return data


@pytest.mark.parametrize("name,hundred", [("cifar10", False), ("cifar100", True)])
def test_cifar_becomes_an_image_folder(tmp_path, monkeypatch, name, hundred):
    import torchvision.datasets as tvd

    data = fake_cifar(tmp_path / "root", hundred)
    # Our small files cannot match torchvision's checksums of the real ones; the format is real.
    monkeypatch.setattr(tvd.cifar, "check_integrity", lambda *a, **k: True)
    info = import_dataset(name, tmp_path / "out", tmp_path / "root", per_class=1)
    expected = 10 if not hundred else 12  # one per class: 10 of CIFAR-10's, 12 distinct of CIFAR-100's
    assert info["counts"]["train"] == expected and len(info["classes"]) == (100 if hundred else 10)
    img = np.asarray(Image.open(tmp_path / "out" / "train" / ("c0" if not hundred else "class_0") / "00000.png"))
    assert np.array_equal(img, data[0].reshape(3, 32, 32).transpose(1, 2, 0))


def test_offline_gives_a_clear_message_and_leaves_nothing(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    def offline(*a, **k):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tv_utils.urllib.request, "urlopen", offline)
    with pytest.raises(DatasetError, match="could not download mnist.*no internet"):
        import_dataset("mnist", tmp_path / "out", tmp_path / "root")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_download_progress_is_reported(tmp_path, monkeypatch):
    """torchvision's download loop reports bytes through our progress callback."""
    import torchvision.datasets.utils as tv_utils

    class Response:
        length, url = 6, None  # url None: no redirect

        def __init__(self):
            self.chunks = [b"abc", b"def", b""]

        def read(self, n):
            return self.chunks.pop(0)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    monkeypatch.setattr(tv_utils.urllib.request, "urlopen", lambda *a, **k: Response())
    events = []
    with pytest.raises(DatasetError):  # 6 bytes are not MNIST: refused after the checksum
        import_dataset("mnist", tmp_path / "out", tmp_path / "root", progress=lambda *e: events.append(e))
    assert ("downloading mnist", 3, 6) in events and ("downloading mnist", 6, 6) in events


def test_cli_import_and_refusals(tmp_path):
    fake_mnist(tmp_path / "root", "MNIST", per_class=2)
    proc = run_cli("import-dataset", "mnist", "--out", str(tmp_path / "digits"), "--root", str(tmp_path / "root"),
                   "--per-class", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["counts"] == {"train": 10, "test": 10}
    assert "writing train images" in proc.stderr
    again = run_cli("import-dataset", "mnist", "--out", str(tmp_path / "digits"), "--root", str(tmp_path / "root"))
    assert again.returncode != 0 and "not empty" in again.stderr
