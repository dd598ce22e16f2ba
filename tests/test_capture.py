"""Camera frames saved as a class-folder data set: names, decoding, hostile input, removal."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from conftest import make_image, COLOURS
from hostile import bomb_png
from tl_core import capture
from tl_core.data import scan_folder, validate
from tl_core.errors import DatasetError
from tl_core.imaging import ImageReadError
from tl_core.paths import folder_name


def data_url(img: Image.Image, fmt: str = "JPEG") -> str:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.mark.parametrize("name", ["", " ", "..", "../up", "a/b", ".hidden", "_x", "a\\b", "x" * 41, "a\x00", "a..b"])
def test_hostile_folder_names_are_refused(name):
    with pytest.raises(DatasetError):
        folder_name(name)


def test_folder_names_of_any_script_are_kept():
    assert folder_name("  thumbs   up ") == "thumbs up"
    assert folder_name("엄지 척") == "엄지 척"


def test_frames_become_a_class_folder_data_set_the_data_page_reads(tmp_path):
    ds = capture.dataset_dir(tmp_path, "hands")
    for cls, colour in (("red", "red"), ("blue", "blue")):
        frames = [data_url(make_image(COLOURS[colour], i, size=400)) for i in range(6)]
        saved, problems = capture.save_frames(ds, cls, frames)
        assert len(saved) == 6 and not problems
    assert capture.classes(ds) == ["blue", "red"] and capture.list_datasets(tmp_path) == ["hands"]
    report, clean = validate(scan_folder(ds))
    assert report.ok and clean.classes == ["blue", "red"] and len(clean.items) == 12
    with Image.open(capture.images(ds, "red")[0]) as img:
        assert img.format == "JPEG" and max(img.size) <= capture.MAX_SIDE


def test_bad_frames_are_skipped_and_named(tmp_path):
    ds = capture.dataset_dir(tmp_path, "hands")
    bad = ["data:text/html;base64,PGI+", "data:image/jpeg;base64,@@@", "data:image/jpeg;base64,"
           + base64.b64encode(b"\xff\xd8 not a jpeg").decode(),
           "data:image/png;base64," + base64.b64encode(bomb_png()).decode(), 42]
    saved, problems = capture.save_frames(ds, "red", bad + [data_url(make_image(COLOURS["red"], 1))])
    assert len(saved) == 1 and len(problems) == len(bad)
    assert problems[0].startswith("frame 1: the camera sent something that is not")
    with pytest.raises(ImageReadError):
        capture.decode_frame("data:image/jpeg;base64," + "A" * (capture.MAX_FRAME_BYTES * 2))


def test_only_images_of_the_data_set_can_be_removed(tmp_path):
    ds = capture.dataset_dir(tmp_path, "hands")
    saved, _problems = capture.save_frames(ds, "red", [data_url(make_image(COLOURS["red"], 1))])
    outside = tmp_path / "other.jpg"
    outside.write_bytes(b"x")
    for victim in (outside, ds / "red" / ".." / ".." / "other.jpg", ds / "notes.txt"):
        with pytest.raises(DatasetError):
            capture.remove_image(ds, victim)
    assert outside.exists()
    capture.remove_image(ds, saved[0])
    assert not saved[0].exists()


def test_a_burst_is_bounded_in_frames_pixels_and_stored_bytes(tmp_path):
    big = io.BytesIO()
    Image.new("RGB", (5000, 4000), (9, 9, 9)).save(big, format="PNG")  # tiny file, 20 MP once decoded
    url = "data:image/png;base64," + base64.b64encode(big.getvalue()).decode()
    with pytest.raises(ImageReadError, match="20 million pixels"):
        capture.decode_frame(url)
    ok = data_url(make_image(COLOURS["red"], 1))
    seen = []
    saved, problems = capture.save_frames(tmp_path / "set", "red", [ok] * (capture.MAX_FRAMES + 3), check=seen.append)
    assert len(saved) == capture.MAX_FRAMES and "only the first 64 frames" in problems[0]
    assert seen == [sum(p.stat().st_size for p in saved)]  # the quota sees the bytes actually written

    def refuse(n):
        raise DatasetError("over quota")

    with pytest.raises(DatasetError):
        capture.save_frames(tmp_path / "other", "red", [ok] * 3, check=refuse)
    assert not (tmp_path / "other").exists()  # refused before anything was written
