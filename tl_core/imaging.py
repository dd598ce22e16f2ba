"""Open any image Pillow can read and turn it into a plain 8-bit RGB picture.

Cameras, scanners and the web produce EXIF-rotated JPEGs, CMYK, palette images with
transparency, 16-bit PNGs and grayscale. Every one is converted here, once, the same way,
so training, evaluation, prediction and export all see the same pixels.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps

from .errors import ImageReadError
from .i18n import _

# Pillow's own default is ~89 Mpx with a warning and 2x that as an error. We turn the warning
# into an error so a decompression bomb is refused instead of eating the RAM of a class server.
MAX_PIXELS = 64_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jfif", ".heic", ".heif"}
)


# The decoders Pillow may use, whatever a file's name says. Without this list, Image.open tries
# every plugin: EPS bytes named ".png" would start Ghostscript where it is installed.
BASE_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP", "PPM")  # in every Pillow
FORMATS = (*BASE_FORMATS, "HEIF", "AVIF")  # HEIF/AVIF where a plugin (pillow-heif) registers them


def _formats() -> list[str]:
    Image.init()
    return [f for f in FORMATS if f in Image.OPEN]  # Pillow refuses names it does not know


def is_image_name(path: str | Path) -> bool:
    """True when the file name looks like an image and is not a hidden/system file."""
    name = Path(path).name
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS


def _to_rgb(img: Image.Image) -> Image.Image:
    img = ImageOps.exif_transpose(img) or img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grayscale: scale the real range to 0..255 instead of clipping to white.
        lo, hi = img.getextrema()
        scale = 255.0 / max(hi - lo, 1)
        img = img.point(lambda v: (v - lo) * scale).convert("L")
    elif img.mode == "F":
        lo, hi = img.getextrema()
        img = img.point(lambda v: (v - lo) * 255.0 / max(hi - lo, 1e-12)).convert("L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent pixels become white, the way a browser shows them on a page.
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def load_rgb(source: str | Path | bytes, min_side: int | None = None) -> Image.Image:
    """Read an image file (or its bytes) as an 8-bit RGB ``PIL.Image``.

    Args:
        source: a path or the raw bytes of an uploaded file.
        min_side: when given, a JPEG may be decoded at 1/2, 1/4 or 1/8 scale as long as both
            sides stay at least this large (Pillow's ``draft``); other formats are unaffected.

    Returns:
        The fully decoded RGB image, EXIF orientation applied.

    Raises:
        ImageReadError: empty, truncated, corrupt, not an image, or larger than ``MAX_PIXELS``.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb")
            with handle:
                head = handle.read(1)
                if not head:
                    raise ImageReadError(_("the file is empty (0 bytes)"))
                handle.seek(0)
                with Image.open(handle, formats=_formats()) as img:
                    if min_side and img.format == "JPEG":
                        img.draft("RGB", (min_side, min_side))
                    img.load()
                    if img.width < 1 or img.height < 1:
                        raise ImageReadError(_("the image has no pixels"))
                    return _to_rgb(img)
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(_("image is too large to open safely (limit {limit:,} pixels): {exc}",
                               limit=MAX_PIXELS, exc=exc)) from None
    except FileNotFoundError:
        raise ImageReadError(_("file not found (moved or deleted?)")) from None
    except IsADirectoryError:
        raise ImageReadError(_("this is a folder, not an image file")) from None
    except Image.UnidentifiedImageError:
        raise ImageReadError(_("not an image Pillow can read (wrong extension or unsupported format)")) from None
    except OSError as exc:
        raise ImageReadError(_("corrupt or truncated image ({exc})", exc=exc)) from None
    except (ValueError, SyntaxError, EOFError) as exc:
        raise ImageReadError(_("corrupt image ({exc})", exc=exc)) from None
