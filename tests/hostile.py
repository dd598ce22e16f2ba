"""Generators of odd and hostile inputs: every kind of bad image and bad zip a classroom produces."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import COLOURS, make_image


def _save(img: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(data)


def good(colour: str, i: int) -> Image.Image:
    return make_image(COLOURS[colour], 700 + i)


def make_hostile_folder(root: Path) -> dict[str, list[Path]]:
    """A data set with every odd case; returns the files that must be skipped and those kept."""
    red, blue = root / "red", root / "파랑 blue"  # a Korean class name with a space
    kept, skipped = [], []
    for i in range(8):
        kept.append(_save(good("red", i), red / f"red_{i}.jpg"))
        kept.append(_save(good("blue", i), blue / f"파랑_{i}.jpg"))
    # Formats Pillow reads, and conversions.
    kept.append(_save(good("red", 20), red / "anim.gif"))
    kept.append(_save(good("red", 21), red / "scan.tiff"))
    kept.append(_save(good("red", 22), red / "paint.bmp"))
    kept.append(_save(good("red", 23), red / "web.webp"))
    kept.append(_save(good("blue", 24).convert("CMYK"), blue / "cmyk.jpg"))
    deep = Image.fromarray((np.linspace(0, 65535, 72 * 72).reshape(72, 72)).astype("<u2"))
    kept.append(_save(deep, blue / "deep16.png"))
    pal = good("blue", 25).convert("P", palette=Image.ADAPTIVE)
    kept.append(_save(pal, blue / "palette.png", transparency=0))
    exif = Image.Exif()
    exif[0x0112] = 6
    kept.append(_save(good("red", 26), red / "rotated.jpg", exif=exif))
    kept.append(_save(Image.new("RGB", (1, 1), (200, 30, 30)), red / "one_pixel.png"))
    kept.append(_save(Image.new("RGB", (4000, 10), (200, 30, 30)), red / "very_wide.png"))
    nested = _save(good("blue", 27), blue / "more" / "deeper" / "nested.jpg")
    kept.append(nested)
    # Broken files: each must be reported by name and skipped.
    trunc = red / "truncated.jpg"
    _save(good("red", 30).resize((300, 300)), trunc, quality=95)
    trunc.write_bytes(trunc.read_bytes()[:2000])
    png = blue / "truncated.png"
    _save(good("blue", 31), png)
    png.write_bytes(png.read_bytes()[:100])
    (red / "empty.jpg").write_bytes(b"")
    (red / "notes.jpg").write_text("this is a text file with a .jpg name")
    (blue / "photo.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)
    (red / "bomb.png").write_bytes(bomb_png())
    skipped += [trunc, png, red / "empty.jpg", red / "notes.jpg", blue / "photo.heic", red / "bomb.png"]
    # Hidden and system files are ignored silently.
    (red / ".DS_Store").write_bytes(b"\x00junk")
    (root / "__MACOSX" / "red").mkdir(parents=True)
    (root / "__MACOSX" / "red" / "._red_0.jpg").write_bytes(b"junk")
    (red / "._red_0.jpg").write_bytes(b"junk")
    return {"kept": kept, "skipped": skipped}


def zip_bytes(entries: list[tuple[str, bytes]], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries:
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


def jpeg_bytes(colour: str, i: int) -> bytes:
    buf = io.BytesIO()
    good(colour, i).save(buf, format="JPEG")
    return buf.getvalue()
