"""The one validator for paths and ids taken from a user: run and lab ids from a URL, folders
picked under the data root, files inside a data set or a bundle. Everything a user names is
checked here, so the boundary (runs folder, data root, bundle folder) is enforced in one place.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# What RunDir.create makes: letters, digits, "-" and "_" ("20260101-120000-run-a1b2c3").
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def is_inside(root: str | Path, path: str | Path) -> bool:
    """True when ``path``, with every link resolved, is ``root`` or lies under it."""
    return Path(path).resolve().is_relative_to(Path(root).resolve())


def run_path(runs_dir: str | Path, run_id: str | None) -> Path | None:
    """The folder of run (or lab) ``run_id`` in ``runs_dir``, or None when the id is malformed, leaves
    the folder (``..``, ``/``, a link) or names nothing there."""
    if not run_id or not RUN_ID.fullmatch(str(run_id)):
        return None
    path = Path(runs_dir) / run_id
    if path.is_symlink() or not path.is_dir() or not is_inside(runs_dir, path):
        return None
    return path


def data_folders(root: str | Path, depth: int = 2) -> tuple[list[str], list[str]]:
    """Folders under the data root a user may pick, down to ``depth`` levels, without walking into
    them any further (a class folder may hold 100k images).

    Returns:
        ``(folders, skipped)``: relative paths, sorted; ``skipped`` lists the links that lead out
        of the root (a data set linked in from another disk), which are not offered.
    """
    root = Path(root).resolve()
    folders, skipped = [], []

    def visit(folder: Path, level: int) -> None:
        try:
            with os.scandir(folder) as entries:
                subdirs = sorted((e for e in entries if e.is_dir() and not e.name.startswith(".")),
                                 key=lambda e: e.name)
        except OSError:  # unreadable (lost+found, another user's folder): nothing to offer there
            return
        for entry in subdirs:
            path = Path(entry.path)
            rel = str(path.relative_to(root))
            if entry.is_symlink() and not is_inside(root, path):
                skipped.append(rel)
                continue
            folders.append(rel)
            if level < depth and not entry.is_symlink():
                visit(path, level + 1)

    visit(root, 1)
    return sorted(folders), skipped


# A class or data set name a user types (the Collect page): it becomes one folder name.
FOLDER_NAME = re.compile(r"[^\W_][\w .-]{0,39}")


def folder_name(text: str) -> str:
    """``text`` as a folder name (trimmed, Unicode composed), or a ``DatasetError`` saying what is
    allowed: letters of any script, digits, spaces, ``_ . -``, at most 40, not starting with a dot,
    never ``..``, ``/`` or a control character."""
    import unicodedata

    from .errors import DatasetError
    from .i18n import _

    name = unicodedata.normalize("NFC", " ".join(str(text).split()))
    if not FOLDER_NAME.fullmatch(name) or ".." in name:
        raise DatasetError(_("'{name}' cannot be a folder name: use up to 40 letters, digits, spaces, '-', '_' or "
                             "'.', starting with a letter or digit.", name=name[:60]))
    return name
