"""A fake camera for Chromium (``--use-file-for-fake-video-capture``): a y4m clip written from photos."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps


def write_y4m(path: Path, photos: list[Path], seconds_each: float = 2.0, fps: int = 10,
              size: tuple[int, int] = (640, 480)) -> Path:
    """A clip that shows each photo in turn for ``seconds_each`` (Chromium loops it). Frames are
    I420: full-resolution Y, then Cb and Cr subsampled 2x2."""
    w, h = size
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for photo in photos:
            img = ImageOps.fit(Image.open(photo).convert("RGB"), size)
            y, cb, cr = img.convert("YCbCr").split()
            planes = y.tobytes() + cb.resize((w // 2, h // 2)).tobytes() + cr.resize((w // 2, h // 2)).tobytes()
            for _i in range(int(seconds_each * fps)):
                fh.write(b"FRAME\n" + planes)
    return path
