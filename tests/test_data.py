"""Image conversion, scanning, validation report and splits on small generated folders."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import COLOURS, make_folder, make_image
from tl_core.curation import set_excluded
from tl_core.data import scan_folder, validate
from tl_core.errors import DatasetError
from tl_core.imaging import ImageReadError, load_rgb
from tl_core.splits import make_split, remap_labels
from tl_core.train import _cap_per_class


def _png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW when displayed
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif, quality=95)
    out = load_rgb(path)
    assert out.size == (20, 40)
    top = np.asarray(out)[2, 10]
    assert top[2] > 200 and top[0] < 60  # the blue half ends up on top


def test_cmyk_palette_transparency_16bit_and_gray_become_rgb(tmp_path):
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # red in CMYK
    cmyk.save(tmp_path / "cmyk.jpg")
    rgb = load_rgb(tmp_path / "cmyk.jpg")
    assert rgb.mode == "RGB" and rgb.getpixel((4, 4))[0] > 200

    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putpixel((0, 0), 1)
    png = _png_bytes(pal, transparency=0)
    out = load_rgb(png)
    assert out.mode == "RGB"
    assert out.getpixel((5, 5)) == (255, 255, 255)  # transparent -> white
    assert out.getpixel((0, 0)) == (0, 255, 0)

    deep = Image.fromarray((np.linspace(0, 65535, 64).reshape(8, 8)).astype("<u2"))
    assert deep.mode.startswith("I")
    out = load_rgb(_png_bytes(deep))
    arr = np.asarray(out)
    assert out.mode == "RGB" and arr.min() == 0 and arr.max() == 255  # full range kept, not clipped

    gray = Image.new("L", (8, 8), 77)
    assert load_rgb(_png_bytes(gray)).getpixel((1, 1)) == (77, 77, 77)

    rgba = Image.new("RGBA", (8, 8), (10, 20, 30, 255))
    assert load_rgb(_png_bytes(rgba)).getpixel((1, 1)) == (10, 20, 30)


@pytest.mark.parametrize("content,reason", [
    (b"", "empty"),
    (b"this is text, not a picture", "not an image"),
])
def test_unreadable_files_have_plain_reasons(tmp_path, content, reason):
    path = tmp_path / "x.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason):
        load_rgb(path)


def test_truncated_jpeg_is_reported(tmp_path):
    path = tmp_path / "t.jpg"
    make_image(COLOURS["red"], 1, size=200).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="corrupt or truncated"):
        load_rgb(path)


def test_scan_skips_hidden_and_non_images_and_includes_nested(tmp_path):
    root = make_folder(tmp_path / "d", per_class=5)
    (root / "red" / ".DS_Store").write_bytes(b"junk")
    (root / "__MACOSX").mkdir()
    (root / "__MACOSX" / "x.jpg").write_bytes(b"junk")
    (root / "blue" / "notes.txt").write_text("hello")
    nested = root / "green" / "more"
    nested.mkdir()
    make_image(COLOURS["green"], 99).save(nested / "deep.jpg")
    scan = scan_folder(root)
    assert scan.classes == ["blue", "green", "red"]
    assert scan.counts() == {"blue": 5, "green": 6, "red": 5}
    assert [p for p, _ in scan.skipped] == [str(root / "blue" / "notes.txt")]


def test_validation_report_lists_every_problem(tmp_path):
    root = make_folder(tmp_path / "d", per_class=20, classes=("red", "green"))
    make_folder(tmp_path / "d", per_class=3, classes=("blue",))
    (root / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    shutil.copy(root / "green" / "green_0.jpg", root / "green" / "copy.jpg")
    (root / "empty").mkdir()
    report, clean = validate(scan_folder(root))
    codes = [i.code for i in report.issues]
    assert "unreadable" in codes and str(root / "red" / "broken.jpg") in report.unreadable
    assert "empty_class" in codes and "few_images" in codes and "imbalance" in codes and "duplicate" in codes
    assert not report.ok  # the empty class cannot be trained
    msg = next(i.message for i in report.issues if i.code == "empty_class")
    assert "empty" in msg and "add images" in msg
    assert str(root / "red" / "broken.jpg") not in [it.path for it in clean.items]

    shutil.rmtree(root / "empty")
    report, _ = validate(scan_folder(root))
    assert report.ok  # warnings only: training proceeds with what is usable


def test_single_class_and_missing_folder_refused(tmp_path):
    root = make_folder(tmp_path / "one", per_class=4, classes=("red",))
    report, _ = validate(scan_folder(root))
    assert not report.ok and "at least 2" in report.errors()[0].message
    with pytest.raises(DatasetError, match="not found"):
        scan_folder(tmp_path / "nope")
    (tmp_path / "flat").mkdir()
    make_image(COLOURS["red"], 0).save(tmp_path / "flat" / "a.jpg")
    with pytest.raises(DatasetError, match="no class sub-folders"):
        scan_folder(tmp_path / "flat")


def test_split_is_stratified_seeded_and_complete(image_folder):
    _, clean = validate(scan_folder(image_folder))
    a = make_split(clean, 0.15, 0.15, seed=1)
    b = make_split(clean, 0.15, 0.15, seed=1)
    c = make_split(clean, 0.15, 0.15, seed=2)
    assert a == b and a != c
    for part in ("val", "test"):
        labels = sorted(it.label for it in a[part])
        assert labels == [0, 0, 1, 1, 2, 2]  # 12 per class: round(1.8) = 2 of each class
    paths = [it.path for part in a.values() for it in part]
    assert len(paths) == len(set(paths)) == 36


@pytest.mark.parametrize("per_class, excluded, cap", [(40, 3, 0), (100, 5, 0), (10, 1, 0), (30, 9, 0), (30, 8, 100)])
def test_excluding_images_leaves_every_other_image_in_its_part(tmp_path, per_class, excluded, cap):
    """A user who excludes suspects and trains again must be compared on the same test images: an
    excluded image keeps its place in the split's order and is then left out, so no other image of
    any class changes part, however many are excluded (the parts' sizes do not shrink with them)."""
    root = make_folder(tmp_path / "d", per_class=per_class, classes=("red", "green"))

    def parts():
        clean = validate(scan_folder(root))[1]
        clean = _cap_per_class(clean, cap) if cap else clean  # a run's --max-images-per-class (not reached here)
        split = make_split(clean, 0.15, 0.15, seed=3, keep_groups=False)
        return {Path(it.path).relative_to(root).as_posix(): part for part, items in split.items() for it in items}

    before = parts()
    red = sorted(p for p in before if p.startswith("red/"))
    gone = red[:excluded // 2] + [p for p in red if before[p] == "train"][:excluded - excluded // 2]
    set_excluded(root, gone)
    after = parts()
    assert after == {p: part for p, part in before.items() if p not in gone}
    set_excluded(root, gone, excluded=False)
    assert parts() == before


def test_a_file_name_that_is_not_utf8_is_split_like_any_other(tmp_path):
    """Old cameras and zip files write Latin-1 names; Linux hands them to Python with surrogates."""
    root = make_folder(tmp_path / "d", per_class=6, classes=("red", "blue"))
    odd = os.fsencode(str(root / "red")) + b"/caf\xe9.jpg"
    make_image(COLOURS["red"], 77).save(odd.decode("utf-8", "surrogateescape"), format="JPEG")
    split = make_split(validate(scan_folder(root))[1], 0.2, 0.2, seed=0)
    assert sum(len(items) for items in split.values()) == 13


def test_presplit_layout_and_separate_test_data(tmp_path):
    root = tmp_path / "ds"
    make_folder(root / "train", per_class=10, classes=("red", "blue"))
    make_folder(root / "validation", per_class=4, classes=("red", "blue"), seed=1)
    _, clean = validate(scan_folder(root))
    assert set(clean.parts) == {"train", "val"}
    split = make_split(clean, 0.15, 0.2, seed=0)
    assert len(split["val"]) == 8 and len(split["test"]) == 4 and len(split["train"]) == 16

    other = make_folder(tmp_path / "other", per_class=3, classes=("blue", "red"), seed=3)
    _, test_scan = validate(scan_folder(other))
    split = make_split(clean, 0.15, 0.2, seed=0, test_scan=test_scan)
    assert len(split["test"]) == 6 and len(split["train"]) == 20
    blue = clean.classes.index("blue")
    assert all((it.label == blue) == ("blue" in it.path.rsplit("/", 1)[-1]) for it in split["test"])

    make_folder(tmp_path / "other", per_class=2, classes=("green",), seed=4)
    _, bad = validate(scan_folder(other))
    with pytest.raises(DatasetError, match="green"):
        remap_labels(bad, clean.classes)


def test_duplicates_across_train_and_test_are_reported(tmp_path):
    from tl_core.data import Scan, duplicate_issues

    root = make_folder(tmp_path / "d", per_class=6, classes=("red", "blue"))
    _, clean = validate(scan_folder(root))
    split = make_split(clean, 0.2, 0.2, seed=0)
    leaked = split["test"][0]
    shutil.copy(leaked.path, root / clean.classes[leaked.label] / "leak.jpg")
    _, clean = validate(scan_folder(root))
    split = make_split(clean, 0.2, 0.2, seed=0)
    copy = next(it for part in split.values() for it in part if it.path.endswith("leak.jpg"))
    across = next(part for part, items in split.items() if copy in items) != "test"
    issues = [i for i in duplicate_issues(Scan(str(root), clean.classes, split)) if leaked.path in i.paths]
    assert [i.code for i in issues] == ["duplicate_across_splits" if across else "duplicate"]
