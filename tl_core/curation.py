"""The user's decisions about a data set, kept in one small file inside it (``tl_curation.json``).

Excluded images are left where they are (nothing is ever deleted) and skipped by the scan, so
every split and training run honours them; "keep" marks a suspect as checked; a move to another
class is logged so it can be undone; near-duplicate groups are kept on one side of every split.
All paths in the file are relative to the data set's folder (POSIX), so the folder can move.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import DatasetError
from .i18n import _
from .paths import is_inside

CURATION_FILE = "tl_curation.json"
SPLIT_NAMES = ("train", "val", "valid", "validation", "test")  # as data.py reads them


@dataclass
class Curation:
    """What the user decided: ``excluded`` and ``kept`` images, ``moves`` ({"from", "to"}) and the
    near-duplicate ``groups`` found by feature distance (all relative paths)."""

    excluded: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    moves: list[dict] = field(default_factory=list)
    groups: list[list[str]] = field(default_factory=list)


def relative(root: str | Path, path: str | Path) -> str:
    """``path`` relative to the data set ``root`` as stored in the file; refuses paths outside it."""
    root, path = Path(root), Path(path)
    full = path if path.is_absolute() else root / path
    if not is_inside(root, full):
        raise DatasetError(_("{path} is not inside the data set {root}", path=path, root=root.name))
    return Path(os.path.normpath(full)).relative_to(os.path.normpath(root)).as_posix()


def load_curation(root: str | Path) -> Curation:
    """The data set's decisions (an empty ``Curation`` when it has none or the file is damaged)."""
    file = Path(root) / CURATION_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        return Curation(**{k: list(data.get(k, [])) for k in Curation.__dataclass_fields__})
    except FileNotFoundError:
        return Curation()
    except (OSError, ValueError, TypeError, AttributeError):
        return Curation()  # a damaged file is not a reason to refuse the data set


def save_curation(root: str | Path, cur: Curation) -> None:
    """Write the file atomically; a read-only data set gives a clear error."""
    file = Path(root) / CURATION_FILE
    tmp = file.with_name(f".{CURATION_FILE}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(asdict(cur), indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, file)
    except OSError as exc:
        raise DatasetError(_("cannot write {file}: {exc}. Copy the data set to a folder you can write to",
                             file=CURATION_FILE, exc=exc.strerror or exc)) from None


def excluded_paths(root: str | Path) -> set[str]:
    """Absolute, normalised paths of the excluded images (what the scan skips)."""
    return {os.path.normpath(Path(root) / rel) for rel in load_curation(root).excluded}


def set_excluded(root: str | Path, paths: list[str], excluded: bool = True) -> Curation:
    """Exclude ``paths`` from training (``excluded=False`` undoes it). The files stay where they are."""
    cur = load_curation(root)
    rels = [relative(root, p) for p in paths]
    if excluded:
        cur.excluded += [r for r in rels if r not in cur.excluded]
    else:
        cur.excluded = [r for r in cur.excluded if r not in rels]
    save_curation(root, cur)
    return cur


def set_kept(root: str | Path, paths: list[str], kept: bool = True) -> Curation:
    """Mark suspects as checked and correct (not listed again); ``kept=False`` undoes it."""
    cur = load_curation(root)
    rels = [relative(root, p) for p in paths]
    cur.kept = cur.kept + [r for r in rels if r not in cur.kept] if kept else [r for r in cur.kept if r not in rels]
    save_curation(root, cur)
    return cur


def _class_dir(root: Path, rel: str, classes: list[str]) -> Path:
    """The class folder holding ``rel``: ``root/<class>`` or ``root/<split>/<class>``."""
    parts = Path(rel).parts
    if len(parts) > 2 and parts[0].lower() in SPLIT_NAMES and parts[1] in classes:
        return root / parts[0] / parts[1]
    if len(parts) > 1 and parts[0] in classes:
        return root / parts[0]
    raise DatasetError(_("{path} is not in a class folder of {root}", path=rel, root=root.name))


def move_to_class(root: str | Path, path: str | Path, new_class: str, classes: list[str]) -> Path:
    """Move one image into the folder of ``new_class`` (same split), log it and return its new path.

    Raises:
        DatasetError: unknown class, a path outside the data set, or a file that is gone.
    """
    root = Path(root)
    if new_class not in classes:
        raise DatasetError(_("unknown class '{c}' (classes: {classes})", c=new_class, classes=", ".join(classes)))
    rel = relative(root, path)
    src = root / rel
    if not src.is_file():
        raise DatasetError(_("{path} no longer exists; check the data set again", path=src.name))
    target_dir = _class_dir(root, rel, classes).parent / new_class
    target_dir.mkdir(exist_ok=True)
    dest, n = target_dir / src.name, 1
    while dest.exists():
        dest, n = target_dir / f"{src.stem}-{n}{src.suffix}", n + 1
    os.rename(src, dest)  # same file system (same data set): nothing is copied or lost
    cur = load_curation(root)
    cur.moves.append({"from": relative(root, src), "to": relative(root, dest)})
    save_curation(root, cur)
    return dest


def undo_move(root: str | Path, moved_to: str | Path) -> Path:
    """Put an image moved by ``move_to_class`` back where it was; returns the original path."""
    root = Path(root)
    rel = relative(root, moved_to)
    cur = load_curation(root)
    move = next((m for m in reversed(cur.moves) if m["to"] == rel), None)
    if move is None:
        raise DatasetError(_("{path} was not moved here by this app, so there is nothing to undo", path=rel))
    src, dest = root / move["from"], root / rel
    if src.exists():
        raise DatasetError(_("cannot undo: {path} exists again", path=move["from"]))
    os.rename(dest, src)
    cur.moves.remove(move)
    save_curation(root, cur)
    return src
