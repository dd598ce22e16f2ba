"""Safe extraction of uploaded zip files: nothing is written outside the destination folder."""

from __future__ import annotations

import errno
import io
import shutil
import stat
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from .errors import DatasetError
from .i18n import _
from .imaging import is_image_name
from .paths import is_inside

MAX_FILES = 20_000
MAX_TOTAL_BYTES = 2 * 1024**3
MAX_UPLOAD_AGE_DAYS = 7  # unpacked uploads are kept a week, then removed (see README)


def unpacked_size(data: bytes) -> int:
    """Bytes the zip's entries take once unpacked (what a disk quota must count: a zip of BMPs can
    be a hundred times smaller than its contents). 0 for a file that is not a zip: unpacking says why."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return 0


def extract_images(data: bytes, dest: str | Path, max_files: int = MAX_FILES,
                   max_bytes: int = MAX_TOTAL_BYTES) -> tuple[Path, list[str]]:
    """Extract the image files of a zip (given as bytes) into ``dest``.

    Skips, and reports, entries with absolute or ``..`` paths, symlinks, hidden/system files,
    ``__MACOSX`` folders, nested zips and non-image files. Refuses zip bombs (more than
    ``max_files`` entries or ``max_bytes`` uncompressed) before writing anything.

    Returns:
        ``(folder holding the class folders, messages about skipped entries)``.

    Raises:
        DatasetError: not a zip file, too large, or no image inside.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DatasetError(_("the upload is not a valid zip file; zip the folder of class sub-folders and try again",
                             )) from None
    infos = zf.infolist()
    total = sum(i.file_size for i in infos)
    if len(infos) > max_files or total > max_bytes:
        raise DatasetError(_("the zip holds {files:,} entries and {mb:,.0f} MB uncompressed; the limit is "
                             "{max_files:,} files and {max_mb:,.0f} MB",
                             files=len(infos), mb=total / 1e6, max_files=max_files, max_mb=max_bytes / 1e6))
    dest = Path(dest).resolve()
    try:
        dest.mkdir(parents=True)  # ours alone from here: the cleanup below never removes another's folder
    except FileExistsError:
        raise DatasetError(_("{name} already exists; choose a new folder for the upload", name=dest.name)) from None
    try:  # all or nothing: a refused zip leaves no partial folder behind
        skipped, written = _extract(zf, infos, dest)
        if not written:
            raise DatasetError(_("the zip holds no image files (jpg, png, ...): put one folder of images per class "
                                 "in it"))
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return _data_root(dest), skipped


def _extract(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], dest: Path) -> tuple[list[str], int]:
    skipped, written, seen = [], 0, set()
    for info in infos:
        reason = _skip_reason(info)
        if reason:
            if reason != "folder":
                skipped.append(f"{info.filename}: {reason}")
            continue
        target = (dest / PurePosixPath(info.filename.replace("\\", "/"))).resolve()
        if not target.is_relative_to(dest):
            skipped.append(f"{info.filename}: path leaves the upload folder")
            continue
        if target in seen:
            skipped.append(f"{info.filename}: the zip holds this name twice (the first copy was kept)")
            continue
        seen.add(target)
        try:
            _write_entry(zf, info, target)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise DatasetError(_("{filename} is damaged inside the zip ({exc}); zip the folder again and upload the "
                                 "new file", filename=info.filename, exc=exc)) from None
        except (NotImplementedError, RuntimeError) as exc:  # a compression method we lack, or encrypted
            raise DatasetError(_("{filename} cannot be unpacked here ({exc}): zip the folder again without a "
                                 "password, with the usual (deflate) compression", filename=info.filename,
                                 exc=exc)) from None
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            raise DatasetError(_("{filename}: the zip uses this name for both a file and a folder; rename one and "
                                 "zip again", filename=info.filename)) from None
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise DatasetError(_("{filename}...: a file or folder name in the zip is too long for this disk "
                                     "(over 255 bytes); shorten it and zip again", filename=info.filename[:60])) from None
            raise
        written += 1
    return skipped, written


def _write_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(info) as src, open(target, "xb") as out:
        remaining = info.file_size + 1
        while chunk := src.read(1 << 20):
            remaining -= len(chunk)
            if remaining < 0:  # the header lied about the size
                raise DatasetError(_("{filename} is larger than its zip header says; upload refused",
                                     filename=info.filename))
            out.write(chunk)


def prune_uploads(uploads: str | Path, max_age_days: float = MAX_UPLOAD_AGE_DAYS, keep=()) -> list[Path]:
    """Delete unpacked uploads older than ``max_age_days``, except those holding a folder in
    ``keep`` (the data set of a session, or of any run: see ``runs.data_in_use``); returns what was
    removed."""
    uploads = Path(uploads)
    if not uploads.is_dir():
        return []
    cutoff = time.time() - max_age_days * 86400
    removed = []
    for folder in sorted(uploads.iterdir()):
        if folder.is_symlink() or not folder.is_dir() or any(is_inside(folder, k) for k in keep):
            continue
        if folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _skip_reason(info: zipfile.ZipInfo) -> str | None:
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if info.is_dir():
        return "folder"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in parts:
        return "path leaves the upload folder"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return "hidden or system file"
    if name.lower().endswith(".zip"):
        return "nested zip (unzip it first)"
    if not is_image_name(name):
        return "not an image file type"
    return None


def _data_root(dest: Path) -> Path:
    """Unwrap a single top-level folder (``my_data.zip`` -> ``my_data/cats, dogs``)."""
    root = dest
    while True:
        entries = [p for p in root.iterdir() if not p.name.startswith(".")]
        if len(entries) == 1 and entries[0].is_dir() and any(c.is_dir() for c in entries[0].iterdir()):
            root = entries[0]
        else:
            return root
