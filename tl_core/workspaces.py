"""Workspaces of a classroom, without accounts: a visitor types a name (and the teacher's join code)
and gets a folder of their own, with its data root, runs folder and saved wizard answers.

A workspace folder's name is made here (``ws-`` + random hex), never from what a visitor typed, so
no name can lead anywhere else on disk; the name they typed is only stored in ``workspace.json``.
A workspace is found again by its token (a secret in the visitor's link), never by its name alone:
typing a classmate's name does not open their work.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from . import settings
from .errors import TLError
from .i18n import _
from .runs import read_json, write_json_atomic

NAME = re.compile(r"[^\W_][\w .'-]{0,31}")  # letters of any script, digits, space . ' -
TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")
FOLDER = re.compile(r"ws-[0-9a-f]{12}")


class WorkspaceError(TLError):
    """A name, join code, PIN or quota refused; the message says what to do."""


@dataclass(frozen=True)
class Workspace:
    """One visitor's folder: ``data/`` (their data root), ``runs/``, ``wizard.json``, ``workspace.json``."""

    root: Path

    data_root = property(lambda self: self.root / "data")
    runs_dir = property(lambda self: self.root / "runs")
    wizard_file = property(lambda self: self.root / "wizard.json")
    info_file = property(lambda self: self.root / "workspace.json")

    def info(self) -> dict:
        return read_json(self.info_file, {}) or {}

    @property
    def name(self) -> str:
        return self.info().get("name", self.root.name)

    @property
    def id(self) -> str:
        return self.root.name


def workspaces_dir() -> Path:
    return settings.classroom_dir() / "workspaces"


def valid_name(name: str) -> str:
    """The name as it is stored (spaces trimmed, Unicode composed), or a WorkspaceError saying why."""
    clean = unicodedata.normalize("NFC", " ".join(str(name).split()))
    if not clean:
        raise WorkspaceError(_("Type your name (or a nickname) to get your own workspace."))
    if not NAME.fullmatch(clean):
        raise WorkspaceError(_("Use at most 32 letters, digits, spaces, dots, dashes or apostrophes for your name, "
                               "starting with a letter or digit."))
    return clean


def list_workspaces() -> list[Workspace]:
    root = workspaces_dir()
    if not root.is_dir():
        return []
    found = [Workspace(p) for p in root.iterdir() if FOLDER.fullmatch(p.name) and p.is_dir() and not p.is_symlink()]
    return sorted(found, key=lambda ws: ws.name.casefold())


def from_token(token: str | None) -> Workspace | None:
    """The workspace whose secret is ``token`` (from the visitor's link), or None."""
    if not token or not TOKEN.fullmatch(str(token)):
        return None
    for ws in list_workspaces():
        if same_secret(token, str(ws.info().get("token", ""))):
            return ws
    return None


def token_of(ws: Workspace) -> str:
    return ws.info()["token"]


def same_secret(typed, expected: str) -> bool:
    """Constant-time comparison of what a visitor typed with a secret. Typed text is normalised first
    (NFKC: full-width digits from an East Asian keyboard become ASCII) and compared as bytes, so any
    text, Hangul included, is simply wrong rather than an error."""
    typed = unicodedata.normalize("NFKC", str(typed)).strip()
    return bool(expected) and secrets.compare_digest(typed.encode(), expected.encode())


def check_code(code: str) -> None:
    expected = settings.join_code()
    if not expected or not same_secret(str(code).upper(), expected.upper()):
        raise WorkspaceError(_("That join code is not this class's: type the code shown on the teacher's screen "
                               "(or scan the QR code)."))


def join(name: str, code: str) -> Workspace:
    """A new workspace for ``name`` (the join code must be the teacher's). A name already taken is
    refused, so one visitor never lands in another's work."""
    check_code(code)
    name = valid_name(name)
    if any(ws.name.casefold() == name.casefold() for ws in list_workspaces()):
        raise WorkspaceError(_("Someone in this class already uses the name '{name}'. If it is you, open your own "
                               "link (the address in your browser when you joined); otherwise add an initial.",
                               name=name))
    root = workspaces_dir()
    root.mkdir(parents=True, exist_ok=True)
    while True:
        folder = root / f"ws-{secrets.token_hex(6)}"
        try:
            folder.mkdir()
            break
        except FileExistsError:
            continue
    ws = Workspace(folder)
    write_json_atomic(ws.info_file, {"name": name, "token": secrets.token_urlsafe(24)})
    return ws


PIN_TRIES_PER_MINUTE = 5
_pin_failures: list[float] = []  # this server's wrong PINs (every session): guessing a PIN takes years


def check_pin(pin: str) -> bool:
    """Whether ``pin`` is the teacher's. After ``PIN_TRIES_PER_MINUTE`` wrong PINs in a minute on
    this server, every PIN is refused until the minute has passed (``pin_locked``)."""
    now = time.time()
    _pin_failures[:] = [t for t in _pin_failures if now - t < 60]
    if pin_locked():
        return False
    ok = same_secret(pin, settings.teacher_pin() or "")
    if not ok:
        _pin_failures.append(now)
    return ok


def pin_locked() -> bool:
    return len([t for t in _pin_failures if time.time() - t < 60]) >= PIN_TRIES_PER_MINUTE


# Disk quota for uploads and captures -----------------------------------------------------------
def usage_bytes(ws: Workspace) -> int:
    """Bytes of the workspace's data root (uploads, imports, captures)."""
    total = 0
    for folder, _dirs, files in os.walk(ws.data_root):
        for f in files:
            try:
                total += os.lstat(os.path.join(folder, f)).st_size
            except OSError:
                pass
    return total


def check_space(ws: Workspace, incoming: int, used: int | None = None) -> None:
    """Refuse ``incoming`` bytes that would take the workspace over ``TL_WORKSPACE_QUOTA_MB``
    (``used``: what it held before, when the caller measured it already)."""
    quota, used = settings.workspace_quota_bytes(), usage_bytes(ws) if used is None else used
    if used + incoming > quota:
        raise WorkspaceError(_("Your workspace would hold {need:.3g} MB, over its limit of {quota:.3g} MB: delete a "
                               "data set you no longer need (or use fewer or smaller images), or ask the teacher "
                               "to raise TL_WORKSPACE_QUOTA_MB.", need=(used + incoming) / 1e6, quota=quota / 1e6))


# The wizard's answers, so a reload (or a phone that locked its screen) comes back to them ------
def load_wizard(ws: Workspace) -> dict:
    data = read_json(ws.wizard_file, {})
    return data if isinstance(data, dict) else {}


def save_wizard(ws: Workspace, answers: dict) -> None:
    if load_wizard(ws) != answers:
        write_json_atomic(ws.wizard_file, answers)


def clear(ws: Workspace) -> None:
    """Delete a workspace's images, runs and answers (its live runs are stopped first); the visitor
    keeps their name and link."""
    from .launcher import is_live, stop
    from .runs import list_runs
    from .sharing import unpublish

    for run in list_runs(ws.runs_dir):
        if is_live(run):
            stop(run, grace=2.0)
        unpublish(run)
    for path in (ws.data_root, ws.runs_dir):
        shutil.rmtree(path, ignore_errors=True)
    ws.wizard_file.unlink(missing_ok=True)


def remove_all() -> int:
    """The teacher's "clear the class": stop every run and delete every workspace. Returns how many."""
    spaces = list_workspaces()
    for ws in spaces:
        clear(ws)
        shutil.rmtree(ws.root, ignore_errors=True)
    return len(spaces)
