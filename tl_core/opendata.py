"""The classic open data sets of the method (MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100), fetched
through torchvision and written as an ImageFolder (``OUT/train/<class>/*.png``, ``OUT/test/...``)
that the wizard and the CLI train on like any folder of photos.

Downloads go to ``root`` (``~/.cache/tl_core/datasets`` by default) and are reused; files already
there in torchvision's layout are used without a network.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable
from urllib.error import URLError

from .errors import DatasetError
from .settings import cache_root
from .i18n import N_, _
from .runs import read_json, write_json_atomic

Progress = Callable[[str, int, int], None]  # (what, done, total)
IMPORT_FILE = ".imported.json"  # written last: the folder is complete
CHECK_EVERY = 50

OPEN_DATASETS = {
    "mnist": ("MNIST", N_("handwritten digits, 28x28 grey, 10 classes, 70,000 images (~11 MB)")),
    "fashion-mnist": ("FashionMNIST", N_("clothing photos, 28x28 grey, 10 classes, 70,000 images (~30 MB)")),
    "cifar10": ("CIFAR10", N_("small colour photos, 32x32, 10 classes, 60,000 images (~170 MB)")),
    "cifar100": ("CIFAR100", N_("small colour photos, 32x32, 100 classes, 60,000 images (~170 MB)")),
}


def default_root() -> Path:
    return cache_root() / "datasets"


class _DownloadProgress:
    """Stands in for torchvision's tqdm while downloading, reporting bytes to ``progress``."""

    def __init__(self, progress: Progress, name: str):
        self.progress, self.name = progress, name

    def __call__(self, total=None, **unused):
        outer = self

        class Bar:
            def __init__(self):
                self.done, self.total = 0, int(total or 0)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def update(self, n):
                self.done += n
                outer.progress(_("downloading {name}", name=outer.name), self.done, self.total)

        return Bar()


@contextlib.contextmanager
def _report_downloads(progress: Progress | None, name: str):
    import torchvision.datasets.utils as tv_utils

    if progress is None:
        yield
        return
    original = tv_utils.tqdm
    tv_utils.tqdm = _DownloadProgress(progress, name)
    try:
        yield
    finally:
        tv_utils.tqdm = original


def _load(name: str, root: Path, train: bool, progress: Progress | None):
    import torchvision.datasets as tvd

    cls = getattr(tvd, OPEN_DATASETS[name][0])
    try:
        with _report_downloads(progress, name):
            return cls(str(root), train=train, download=True)
    except (URLError, OSError, RuntimeError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, (URLError, ConnectionError, TimeoutError)) \
                and "download" not in str(exc).lower():
            raise DatasetError(_("could not read {name} files in {root}: {exc}",
                                 name=name, root=root, exc=exc)) from None
        raise DatasetError(
            _("could not download {name} (no internet connection?): {reason}. Connect and try again, or copy "
              "torchvision's {files} files into {root} and import again.",
              name=name, reason=str(exc).splitlines()[0][:200], files=OPEN_DATASETS[name][0], root=root)) from None


def _folder_name(label: str) -> str:
    return re.sub(r"[^\w-]+", "_", label).strip("_") or "class"


def import_dataset(name: str, out: str | Path, root: str | Path | None = None, per_class: int | None = None,
                   progress: Progress | None = None, check: Callable[[int], None] | None = None) -> dict:
    """Fetch ``name`` and write it to ``out`` as ``train/`` and ``test/`` ImageFolders of PNGs.

    Args:
        per_class: keep at most this many images per class and split (a quick classroom subset).
        check: called with the bytes written so far, every ``CHECK_EVERY`` images and at the end
            of each split; raising there (a classroom's disk quota) stops the import and removes
            what it wrote.

    Returns:
        ``{"name", "out", "classes", "counts": {"train": n, "test": n}}``.

    Raises:
        DatasetError: unknown name, offline without the files, or ``out`` is not empty.
    """
    if name not in OPEN_DATASETS:
        raise DatasetError(_("unknown data set {name!r}; choose one of {names}",
                             name=name, names=', '.join(OPEN_DATASETS)))
    out, root = Path(out), Path(root) if root else default_root()
    out.parent.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    with _import_lock(out, root):  # a second import of the same folder waits, then finds it done
        done = read_json(out / IMPORT_FILE)
        if done and done.get("name") == name and done.get("per_class") == per_class:
            return done["result"]
        if out.exists() and any(out.iterdir()):
            raise DatasetError(_("{out} is not empty; choose a new folder so nothing there is overwritten",
                                 out=out.name))
        result = _write_dataset(name, out, root, per_class, progress, check)
        write_json_atomic(out / IMPORT_FILE, {"name": name, "per_class": per_class, "result": result})
        return result


@contextlib.contextmanager
def _import_lock(out: Path, root: Path):
    """An exclusive lock per destination folder, kept in the download folder (released by the OS
    if the process dies)."""
    import fcntl

    locks = root / ".locks"
    locks.mkdir(exist_ok=True)
    key = hashlib.blake2b(str(out.resolve()).encode(), digest_size=8).hexdigest()
    with open(locks / f"import-{key}.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_dataset(name: str, out: Path, root: Path, per_class: int | None, progress: Progress | None,
                   check: Callable[[int], None] | None) -> dict:
    """Write into a private temporary folder next to ``out``, then rename it into place."""
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    counts, classes, written = {}, [], 0  # bytes written by this import, across both splits
    try:
        for part, train in (("train", True), ("test", False)):
            ds = _load(name, root, train, progress)
            classes = [str(c) for c in ds.classes]
            counts[part], written = _write_part(ds, tmp / part, per_class, progress, part,
                                                check or (lambda _n: None), written)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"name": name, "out": str(out), "classes": classes, "counts": counts}


def _write_part(ds, folder: Path, per_class: int | None, progress: Progress | None, part: str,
                check: Callable[[int], None], written_bytes: int) -> tuple[int, int]:
    """One split of ``ds`` as PNG class folders under ``folder``. Returns how many images were
    written, and the import's bytes so far (``written_bytes`` before this split, plus its own)."""
    folders = [_folder_name(str(c)) for c in ds.classes]
    for f in set(folders):
        (folder / f).mkdir(parents=True, exist_ok=True)
    taken = [0] * len(folders)
    targets = [int(t) for t in ds.targets]
    total = min(len(targets), per_class * len(folders)) if per_class else len(targets)
    written = 0
    for i, label in enumerate(targets):
        if per_class and taken[label] >= per_class:
            continue
        taken[label] += 1
        path = folder / folders[label] / f"{i:05d}.png"
        ds[i][0].save(path)
        written_bytes += path.stat().st_size
        written += 1
        if written % CHECK_EVERY == 0:
            check(written_bytes)
        if progress and (written % 200 == 0 or written == total):
            progress(_("writing {part} images", part=_(part)), written, total)
    check(written_bytes)
    return written, written_bytes
