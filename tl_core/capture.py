"""Images from a camera or a phone's gallery, saved as an ordinary class-folder data set of JPEGs
(``<data root>/captures/<data set>/<class>/*.jpg``), so every other step reads them unchanged; and
single frames of a live camera classified as they come.

Frames arrive as ``data:image/jpeg;base64,...`` URLs from the browser. Each one is decoded with the
same guarded reader as every other image (size and pixel limits), and written again as a plain
JPEG: whatever else the browser's bytes held (metadata, a second image) is not kept.
"""

from __future__ import annotations

import base64
import binascii
import io
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from .errors import DatasetError
from .i18n import _
from .imaging import ImageReadError, load_rgb
from .paths import folder_name, is_inside

CAPTURES = "captures"
MAX_FRAME_BYTES = 4 * 1024**2  # one photo from a phone's camera, already shrunk in the browser
MAX_SIDE = 640  # what is kept: enough for every backbone's input, small enough for a class quota
MAX_FRAME_PIXELS = 4096 * 4096  # a phone photo is 12 MP; a small PNG claiming more would fill the memory
MAX_FRAMES = 64  # per burst (8 s of recording): more is refused, not queued
PREFIXES = ("data:image/jpeg;base64,", "data:image/png;base64,", "data:image/webp;base64,")


def dataset_dir(data_root: str | Path, name: str) -> Path:
    """The folder of captured data set ``name`` under the data root (the name is validated)."""
    return Path(data_root) / CAPTURES / folder_name(name)


def list_datasets(data_root: str | Path) -> list[str]:
    root = Path(data_root) / CAPTURES
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.is_symlink()) if root.is_dir() else []


def decode_frame(url: str) -> Image.Image:
    """A browser's image data URL as an RGB picture; an ImageReadError says why it is not one."""
    if not isinstance(url, str) or not url.startswith(PREFIXES):
        raise ImageReadError(_("the camera sent something that is not a JPEG, PNG or WebP picture"))
    payload = url.split(",", 1)[1]
    if len(payload) > MAX_FRAME_BYTES * 4 // 3 + 4:
        raise ImageReadError(_("the picture is larger than {mb} MB", mb=MAX_FRAME_BYTES // 1024**2))
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageReadError(_("the camera's picture arrived damaged (not valid base64)")) from None
    try:
        with Image.open(io.BytesIO(data)) as probe:  # the header only: size before any decoding
            width, height = probe.size
    except Exception:  # noqa: BLE001 - not a picture: load_rgb says precisely why
        width = height = 0
    if width * height > MAX_FRAME_PIXELS:
        raise ImageReadError(_("the picture has {mp:.0f} million pixels; at most {max:.0f} million are accepted",
                               mp=width * height / 1e6, max=MAX_FRAME_PIXELS / 1e6))
    return load_rgb(data, min_side=MAX_SIDE)


def add_class(dataset: Path, name: str) -> Path:
    folder = dataset / folder_name(name)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def classes(dataset: Path) -> list[str]:
    return sorted(p.name for p in dataset.iterdir() if p.is_dir() and not p.is_symlink()) if dataset.is_dir() else []


def images(dataset: Path, name: str) -> list[Path]:
    """The JPEGs of class ``name``, oldest first."""
    folder = dataset / folder_name(name)
    return sorted(folder.glob("*.jpg")) if folder.is_dir() else []


def encode(img: Image.Image) -> bytes:
    """A picture as the JPEG that is stored (at most MAX_SIDE pixels on its longer side)."""
    img = img.copy()
    img.thumbnail((MAX_SIDE, MAX_SIDE))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def save_frames(dataset: Path, name: str, frames: list[str],
                check: Callable[[int], None] | None = None) -> tuple[list[Path], list[str]]:
    """Decode and save ``frames`` (at most ``MAX_FRAMES``) into class ``name``. ``check`` is called
    with the bytes the JPEGs will take, before anything is written (a quota raises there).

    Returns:
        ``(saved paths, problems)``: a frame that is not a picture is skipped and named in ``problems``.
    """
    problems, encoded = [], []
    if len(frames) > MAX_FRAMES:
        problems.append(_("only the first {n} frames of a burst are kept; record again for more", n=MAX_FRAMES))
    for i, url in enumerate(frames[:MAX_FRAMES]):
        try:
            encoded.append((i, encode(decode_frame(url))))
        except ImageReadError as exc:
            problems.append(_("frame {n}: {error}", n=i + 1, error=exc))
    if check:
        check(sum(len(data) for _i, data in encoded))
    folder = add_class(dataset, name)
    stamp, saved = time.strftime("%Y%m%d-%H%M%S"), []
    for i, data in encoded:
        path = folder / f"{stamp}-{secrets.token_hex(3)}-{i:03d}.jpg"
        path.write_bytes(data)
        saved.append(path)
    return saved, problems


def remove_image(dataset: Path, path: str | Path) -> None:
    """Delete one captured image; refuses anything that is not a JPEG inside the data set."""
    path = Path(path)
    if path.suffix != ".jpg" or path.is_symlink() or not is_inside(dataset, path) or path.parent.parent != dataset:
        raise DatasetError(_("{name} is not an image of this data set", name=path.name))
    path.unlink(missing_ok=True)


def remove_class(dataset: Path, name: str) -> None:
    import shutil

    shutil.rmtree(dataset / folder_name(name), ignore_errors=True)
