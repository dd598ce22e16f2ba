"""The classic open data sets of the method (MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100), fetched
through torchvision and written as an ImageFolder (``OUT/train/<class>/*.png``, ``OUT/test/...``)
that the wizard and the CLI train on like any folder of photos.

Downloads go to ``root`` (``~/.cache/tl_core/datasets`` by default) and are reused; files already
there in torchvision's layout are used without a network.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path
from typing import Callable
from urllib.error import URLError

from .errors import DatasetError
from .i18n import N_, _
from .features import cache_root

Progress = Callable[[str, int, int], None]  # (what, done, total)

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
                   progress: Progress | None = None) -> dict:
    """Fetch ``name`` and write it to ``out`` as ``train/`` and ``test/`` ImageFolders of PNGs.

    Args:
        per_class: keep at most this many images per class and split (a quick classroom subset).

    Returns:
        ``{"name", "out", "classes", "counts": {"train": n, "test": n}}``.

    Raises:
        DatasetError: unknown name, offline without the files, or ``out`` is not empty.
    """
    if name not in OPEN_DATASETS:
        raise DatasetError(_("unknown data set {name!r}; choose one of {names}",
                             name=name, names=', '.join(OPEN_DATASETS)))
    out, root = Path(out), Path(root) if root else default_root()
    if out.exists() and any(out.iterdir()):
        raise DatasetError(_("{out} is not empty; choose a new folder so nothing there is overwritten", out=out))
    root.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    counts, classes = {}, []
    try:
        for part, train in (("train", True), ("test", False)):
            ds = _load(name, root, train, progress)
            classes = [str(c) for c in ds.classes]
            folders = [_folder_name(c) for c in classes]
            for f in set(folders):
                (tmp / part / f).mkdir(parents=True, exist_ok=True)
            taken = [0] * len(classes)
            targets = [int(t) for t in ds.targets]
            total = min(len(targets), per_class * len(classes)) if per_class else len(targets)
            written = 0
            for i, label in enumerate(targets):
                if per_class and taken[label] >= per_class:
                    continue
                taken[label] += 1
                img = ds[i][0]
                img.save(tmp / part / folders[label] / f"{i:05d}.png")
                written += 1
                if progress and (written % 200 == 0 or written == total):
                    progress(_("writing {part} images", part=_(part)), written, total)
            counts[part] = written
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"name": name, "out": str(out), "classes": classes, "counts": counts}
