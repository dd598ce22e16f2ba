"""Scan an image folder, report every problem, and split it reproducibly.

Accepted layouts: ``root/<class>/*.jpg`` (nested folders inside a class are included), or
``root/train/<class>/...`` with ``root/val|validation/`` and/or ``root/test/``.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .curation import excluded_paths
from .errors import DatasetError
from .i18n import N_, _
from .imaging import ImageReadError, is_image_name, load_rgb
from .paths import is_inside

SKIP_DIRS = {"__MACOSX", "__pycache__"}
VAL_NAMES = ("val", "valid", "validation")
TEST_NAMES = ("test",)
MIN_IMAGES_PER_CLASS = 5
IMBALANCE_RATIO = 3.0


@dataclass(frozen=True)
class Item:
    path: str
    label: int


@dataclass
class Issue:
    """One problem found in a data set. ``level`` is "error" (training refuses) or "warning"."""

    LEVELS = (N_("error"), N_("warning"))  # shown translated

    level: str
    code: str
    message: str
    paths: list[str] = field(default_factory=list)


@dataclass
class Scan:
    """Classes and image files found under a root, per split when the folder is pre-split."""

    root: str
    classes: list[str]
    parts: dict[str, list[Item]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)  # left out by the user (tl_curation.json)
    excluded_items: dict[str, list[Item]] = field(default_factory=dict)  # the same, per part, with their class

    @property
    def items(self) -> list[Item]:
        return [it for part in self.parts.values() for it in part]

    def counts(self) -> dict[str, int]:
        c = Counter(it.label for it in self.items)
        return {name: c.get(i, 0) for i, name in enumerate(self.classes)}


@dataclass
class Report:
    """Everything wrong with a data set; ``ok`` is False only when training cannot work."""

    root: str
    classes: list[str]
    counts: dict[str, int]
    issues: list[Issue]
    unreadable: list[str]

    @property
    def ok(self) -> bool:
        return not any(i.level == "error" for i in self.issues)

    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "error"]

    def to_dict(self) -> dict:
        return {"root": self.root, "ok": self.ok, "classes": self.classes, "counts": self.counts,
                "issues": [asdict(i) for i in self.issues], "unreadable": self.unreadable}


def _visible(p: Path) -> bool:
    return not p.name.startswith(".") and p.name not in SKIP_DIRS


LEAVES_ROOT = N_("a link to outside the data folder (not read)")


def _class_dirs(folder: Path, root: Path, skipped: list) -> list[Path]:
    """Class folders of ``folder``; one leading out of ``root`` (a link) is skipped and reported."""
    out = []
    for p in sorted(folder.iterdir(), key=lambda p: p.name):
        if not (p.is_dir() and _visible(p)):
            continue
        if not is_inside(root, p):
            skipped.append((str(p), LEAVES_ROOT))
        else:
            out.append(p)
    return out


def _files_under(folder: Path, root: Path, skipped: list) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if _visible(Path(d)))
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if name.startswith("."):
                continue
            if os.path.islink(path) and not is_inside(root, path):
                skipped.append((path, LEAVES_ROOT))
            elif is_image_name(name):
                out.append(path)
            else:
                skipped.append((path, N_("not an image file type")))
    return out


def _rel(path: str | Path, root: str | Path) -> str:
    """``path`` as users know it: relative to the data set's folder, never the server's layout."""
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return Path(path).name


def _find_split_dirs(root: Path, skipped: list) -> dict[str, Path] | None:
    names = {}
    for p in root.iterdir():
        if p.is_dir() and is_inside(root, p):
            names[p.name.lower()] = p
        elif p.is_dir() and p.name.lower() in ("train", *VAL_NAMES, *TEST_NAMES):
            skipped.append((str(p), LEAVES_ROOT))  # a train/ or test/ link to elsewhere is not read
    if "train" not in names:
        return None
    found = {"train": names["train"]}
    for part, candidates in (("val", VAL_NAMES), ("test", TEST_NAMES)):
        for cand in candidates:
            if cand in names:
                found[part] = names[cand]
                break
    return found if len(found) > 1 else None


def scan_folder(root: str | Path, honour_exclusions: bool = True) -> Scan:
    """Find classes and image files under ``root`` (no image is opened here), leaving out the
    images the user excluded (``curation.set_excluded``) unless ``honour_exclusions`` is False.

    Raises:
        DatasetError: the folder does not exist or has no class sub-folders.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(_("data folder not found: {root}. Give a folder with one sub-folder per class", root=root))
    skipped: list[tuple[str, str]] = []
    split_dirs = _find_split_dirs(root, skipped)
    if split_dirs is None:
        split_dirs = {"all": root}
    class_dirs = {part: _class_dirs(folder, root, skipped) for part, folder in split_dirs.items()}
    classes = sorted({d.name for dirs in class_dirs.values() for d in dirs})
    if not classes:
        raise DatasetError(_("`{name}` has no class sub-folders: put the images of each class in a folder of its "
                             "own, e.g. `{name}/cats/` and `{name}/dogs/`; the folder names become the labels",
                             name=root.name))
    index = {name: i for i, name in enumerate(classes)}
    left_out = excluded_paths(root) if honour_exclusions else set()
    parts, excluded, excluded_items = {}, [], {}
    for part, folder in split_dirs.items():
        items = []
        for d in class_dirs[part]:
            for p in _files_under(d, root, skipped):
                if os.path.normpath(p) in left_out:
                    excluded.append(p)
                    excluded_items.setdefault(part, []).append(Item(p, index[d.name]))
                else:
                    items.append(Item(p, index[d.name]))
        loose = [str(p) for p in folder.iterdir() if p.is_file() and is_image_name(p)]
        skipped += [(p, N_("image outside any class folder")) for p in loose]
        parts[part] = items
    return Scan(str(root), classes, parts, skipped, excluded, excluded_items)


MAX_ASPECT = 8.0
MIN_SIDE = 16


def _readable(items: list[Item]) -> tuple[list[Item], list[tuple[str, str]], list[str]]:
    """Decode every image: (usable items, (path, reason) of unreadable ones, odd-shaped paths).

    JPEGs are decoded at reduced scale (still all of the file, so truncation and corruption show)
    while both sides stay >= 64 px: the shape checks below are unaffected, and a 2000-photo check
    takes a third of the time."""
    good, bad, odd = [], [], []
    for it in items:
        try:
            w, h = load_rgb(it.path, min_side=64).size
        except ImageReadError as exc:
            bad.append((it.path, str(exc)))
            continue
        good.append(it)
        if min(w, h) < MIN_SIDE or max(w, h) > MAX_ASPECT * min(w, h):
            odd.append(it.path)
    return good, bad, odd


def file_digest(path: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def validate(scan: Scan, check_images: bool = True) -> tuple[Report, Scan]:
    """Check a scan and return the report plus a scan holding only the usable images.

    Reports unreadable files (with paths and reasons), empty classes, classes with fewer than
    ``MIN_IMAGES_PER_CLASS`` images, heavy imbalance, exact duplicate files and duplicates
    across parts (e.g. the same photo in train and test). Only fewer than two usable classes or
    a class without any readable image is an error.
    """
    issues: list[Issue] = []
    unreadable: list[str] = []
    parts = {}
    odd: list[str] = []
    for part, items in scan.parts.items():
        good, bad, odd_here = _readable(items) if check_images else (items, [], [])
        parts[part] = good
        odd += odd_here
        unreadable += [p for p, why in bad]
        for path, why in bad:
            issues.append(Issue("warning", "unreadable", _("skipped {path}: {why}", path=_rel(path, scan.root), why=why),
                                [path]))
    if odd:
        issues.append(Issue("warning", "odd_shape",
                            _("{n} image(s) are tiny (under {side} px) or extremely wide/tall (over {aspect:.0f}:1); "
                              "they are used, but padded or blurred: {paths}", n=len(odd), side=MIN_SIDE,
                              aspect=MAX_ASPECT, paths=", ".join(_rel(p, scan.root) for p in odd[:4])), odd))
    if scan.skipped:
        issues.append(Issue("warning", "skipped_files",
                            _("{n} file(s) ignored (not images, outside class folders, or links leading out of the "
                              "data folder): {paths}", n=len(scan.skipped),
                              paths="; ".join(f"{_rel(p, scan.root)}: {_(why)}" for p, why in scan.skipped[:5])),
                            [p for p, why in scan.skipped]))
    if scan.excluded:
        issues.append(Issue("warning", "excluded",
                            _("{n} image(s) excluded by you are left out (undo on the Data page; the files stay where "
                              "they are): {paths}", n=len(scan.excluded),
                              paths=", ".join(_rel(p, scan.root) for p in scan.excluded[:5])), list(scan.excluded)))
    clean = replace(scan, parts=parts)
    counts = clean.counts()
    issues += _class_issues(counts, scan)
    issues += duplicate_issues(clean)
    return Report(scan.root, scan.classes, counts, issues, unreadable), clean


def _normal_name(name: str) -> str:
    return " ".join(name.replace("_", " ").replace("-", " ").split()).casefold()


def _class_issues(counts: dict[str, int], scan: Scan) -> list[Issue]:
    issues = []
    groups = defaultdict(list)
    for c in counts:
        groups[_normal_name(c)].append(c)
    for names in groups.values():
        if len(names) > 1:
            issues.append(Issue("warning", "similar_class_names",
                                _("classes {names} differ only in capitals, spaces or dashes: they are trained as "
                                  "different classes; merge the folders if they mean the same thing", names=names)))
    empty = [c for c, n in counts.items() if n == 0]
    for c in empty:
        issues.append(Issue("error", "empty_class",
                            _("class '{c}' has no readable image: add images to its folder or delete that folder",
                              c=c),
                            [str(Path(scan.root) / c)]))
    usable = [c for c, n in counts.items() if n > 0]
    if len(usable) < 2:
        issues.append(Issue("error", "too_few_classes",
                            _("found {n} class(es) with images ({names}); a classifier needs at least 2: add a "
                              "sub-folder of images for each class", n=len(usable),
                              names=", ".join(usable) or _("none"))))
    for c, n in counts.items():
        if 0 < n < MIN_IMAGES_PER_CLASS:
            issues.append(Issue("warning", "few_images",
                                _("class '{c}' has only {n} image(s); aim for at least 20 (results will be "
                                  "unreliable)", c=c, n=n)))
    nonzero = [n for n in counts.values() if n > 0]
    if len(nonzero) >= 2 and max(nonzero) > IMBALANCE_RATIO * min(nonzero):
        big = max(counts, key=counts.get)
        small = min((c for c in counts if counts[c] > 0), key=counts.get)
        issues.append(Issue("warning", "imbalance",
                            _("classes are imbalanced: '{big}' has {n_big} images, '{small}' only {n_small}; accuracy "
                              "can look good while '{small}' is mostly wrong", big=big, n_big=counts[big], small=small,
                              n_small=counts[small])))
    return issues


def duplicate_issues(scan: Scan) -> list[Issue]:
    # Group by size first: only files of equal size can be identical, so most files are never hashed.
    by_size = defaultdict(list)
    for part, items in scan.parts.items():
        for it in items:
            by_size[os.path.getsize(it.path)].append((part, it))
    by_hash = defaultdict(list)
    for group in by_size.values():
        if len(group) > 1:
            for part, it in group:
                by_hash[file_digest(it.path)].append((part, it))
    issues = []
    for group in by_hash.values():
        if len(group) < 2:
            continue
        paths = [it.path for part, it in group]
        labels = {scan.classes[it.label] for part, it in group}
        parts = {part for part, it in group}
        where = _(" in classes {names}", names=sorted(labels)) if len(labels) > 1 else ""
        across = _(" across splits {parts}", parts="/".join(sorted(parts))) if len(parts) > 1 else ""
        issues.append(Issue("warning", "duplicate_across_splits" if across else "duplicate",
                            _("{n} identical files{where}{across}: {paths}", n=len(paths), where=where, across=across,
                              paths=", ".join(_rel(p, scan.root) for p in paths[:4])), paths))
    return issues
