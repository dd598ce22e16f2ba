"""Run directories: everything one training run writes, readable by the UI and the CLI.

Layout: ``config.json`` (fully resolved), ``labels.json``, ``split.json``, ``status.json``
(atomic), ``metrics.jsonl`` (append-only), ``checkpoints/{best,last}.pt``, ``eval.json``,
``train.log``, ``stop`` (a flag file that asks the trainer to stop).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from .errors import RunError, TLError
from .i18n import N_, _

log = logging.getLogger("tl_core.runs")
TERMINAL_STATES = ("succeeded", "failed", "stopped", "interrupted")
# What status.json may say, for the catalog: states, then stages (translated where shown).
WORDS = (N_("queued"), N_("running"), N_("succeeded"), N_("failed"), N_("stopped"), N_("interrupted"))
# A stage as people read it (status.json and eval.json keep the short names).
STAGE_LABELS = {"preparing": N_("preparing the data"), "features": N_("reading the images through the frozen layers"),
                "prefix": N_("reading the images through the frozen layers"),
                "head": N_("training the new classifier"), "finetune": N_("fine-tuning the unfrozen layers"),
                "done": N_("done"), "starting": N_("starting")}


def stage_label(stage: str | None) -> str:
    """``stage`` ("head", "finetune", ...) in plain words, translated."""
    return _(STAGE_LABELS.get(stage or "starting", stage or ""))


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON so a reader never sees half a file (temp file + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: str | Path, default: Any = None) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return default


class RunDir:
    """Paths and small I/O helpers of one run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def create(cls, runs_dir: str | Path, prefix: str = "run") -> "RunDir":
        """A new, empty run directory with a sortable, unique id (time + random suffix)."""
        runs_dir = Path(runs_dir)
        runs_dir.mkdir(parents=True, exist_ok=True)
        while True:
            run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{prefix}-{secrets.token_hex(3)}"
            try:
                (runs_dir / run_id).mkdir()
                return cls(runs_dir / run_id)
            except FileExistsError:
                continue

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        run = cls(path)
        if not run.config_file.is_file():
            raise RunError(_("{path} is not a run directory (no config.json); give the folder a training run made",
                             path=path))
        return run

    @property
    def id(self) -> str:
        return self.path.name

    config_file = property(lambda self: self.path / "config.json")
    labels_file = property(lambda self: self.path / "labels.json")
    split_file = property(lambda self: self.path / "split.json")
    status_file = property(lambda self: self.path / "status.json")
    metrics_file = property(lambda self: self.path / "metrics.jsonl")
    eval_file = property(lambda self: self.path / "eval.json")
    log_file = property(lambda self: self.path / "train.log")
    stop_file = property(lambda self: self.path / "stop")
    checkpoints = property(lambda self: self.path / "checkpoints")

    def checkpoint(self, which: str = "best") -> Path:
        return self.checkpoints / f"{which}.pt"

    def status(self) -> dict:
        return read_json(self.status_file, {}) or {}

    def write_status(self, **fields: Any) -> dict:
        status = {**self.status(), **fields, "updated": time.time()}
        write_json_atomic(self.status_file, status)
        return status

    def labels(self) -> list[str]:
        labels = read_json(self.labels_file)
        if not labels:
            raise RunError(_("{path} has no labels.json; the run did not get far enough to define its classes",
                             path=self.path))
        return labels

    def append_metrics(self, record: dict) -> None:
        with open(self.metrics_file, "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def metrics(self) -> list[dict]:
        """Every complete line of ``metrics.jsonl`` (a half-written last line is skipped)."""
        out = []
        try:
            with open(self.metrics_file) as fh:
                for line in fh:
                    try:
                        out.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue
        except FileNotFoundError:
            pass
        return out

    def request_stop(self) -> None:
        self.stop_file.touch()

    def stop_requested(self) -> bool:
        return self.stop_file.exists()


def pid_alive(pid: int | None) -> bool:
    """True when ``pid`` is a live (not zombie) tl_core process; guards against PID reuse on Linux."""
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            if proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return False
            return b"tl_core" in proc.joinpath("cmdline").read_bytes()
        except OSError:
            return False
    return True


# A launcher writes "queued" before it knows the child's pid; after this long without one the
# launcher itself died and the run will never start.
PIDLESS_QUEUE_SECONDS = 120


def run_state(run: RunDir) -> str:
    """``queued``, ``running``, ``succeeded``, ``failed``, ``stopped`` or ``interrupted`` (marked
    live but its process is gone: killed, out of memory, a reboot, or never recorded)."""
    status = run.status()
    state = status.get("state", "queued")
    if state not in ("running", "queued"):
        return state
    pid = status.get("pid")
    if pid:
        return state if pid_alive(pid) else "interrupted"
    if state == "running":
        return "interrupted"  # every live run records its process; one without cannot be stopped
    created = status.get("queued_at") or status.get("created") or _mtime(run.path)
    return state if time.time() - created < PIDLESS_QUEUE_SECONDS else "interrupted"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def is_lab(path: str | Path) -> bool:
    """A scenario lab's folder (``status.json`` and ``lab.json``, no ``config.json`` of its own)."""
    path = Path(path)
    return (not (path / "config.json").is_file() and (path / "status.json").is_file()
            and ((path / "lab.json").is_file() or path.name.split("-")[2:3] == ["lab"]))


def list_jobs(runs_dir: str | Path) -> list[RunDir]:
    """``list_runs`` plus the measured-advice jobs (``*-advice-*``): everything that takes a training
    slot, for the queue's limits and the teacher's list of live work."""
    runs_dir = Path(runs_dir)
    jobs = [RunDir(p) for p in runs_dir.glob("*-advice-*") if p.is_dir() and not p.is_symlink()
            and (p / "status.json").is_file()] if runs_dir.is_dir() else []
    return sorted(list_runs(runs_dir) + jobs, key=lambda r: r.path.name, reverse=True)


def list_runs(runs_dir: str | Path) -> list[RunDir]:
    """Every run and lab folder in ``runs_dir``, newest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return [RunDir(p) for p in sorted(runs_dir.iterdir(), reverse=True)
            if p.is_dir() and not p.is_symlink() and ((p / "config.json").is_file() or is_lab(p))]


_DEFAULT = object()


def data_in_use(runs_dir: str | Path) -> set[str]:
    """The data folders that the runs and labs of ``runs_dir`` were trained on (kept by cleanups:
    Evaluate, Resume and the lab still read them)."""
    used = set()
    for r in list_runs(runs_dir):
        for file in (r.config_file, r.path / "lab.json"):
            info = read_json(file, {}) or {}
            used.update(str(info[k]) for k in ("data", "test_data") if isinstance(info, dict) and info.get(k))
    return used


def waiting_behind(run: RunDir) -> list[str]:
    """Ids of the other runs and labs sharing ``run``'s queue that are training now (what a queued run
    really waits for; none means it is only starting up)."""
    return [RunDir(p).id for p in queue_scope(run)[0]
            if p != run.path and (p / "status.json").is_file() and run_state(RunDir(p)) == "running"]


@contextlib.contextmanager
def lifecycle(run: RunDir, log_file: bool = True, on_term=_DEFAULT):
    """Own one run's life in this process: record the pid, send log lines to ``train.log``, turn
    SIGTERM into a clean stop request, and always write a final state: ``failed`` with the reason
    when the body raises, ``stopped`` when interrupted. Success is written by the body itself
    (``train_run``), which knows the result.

    Args:
        on_term: called on SIGTERM (default: ask ``run`` to stop); None leaves the handler as it
            is (a lab's scenario run: the lab forwards its own stop).
    """
    run.write_status(pid=os.getpid())
    handler = None
    if log_file:
        handler = logging.FileHandler(run.log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logging.getLogger().addHandler(handler)
    on_term = run.request_stop if on_term is _DEFAULT else on_term
    previous = signal.signal(signal.SIGTERM, lambda *_signal: on_term()) if on_term else None
    try:
        yield run
    except TLError as exc:
        run.write_status(state="failed", error=str(exc), finished=time.time())
        raise
    except (KeyboardInterrupt, SystemExit):
        if run.status().get("state") in ("running", "queued"):
            run.write_status(state="stopped", finished=time.time())
        raise
    except BaseException as exc:
        log.error("training crashed:\n%s", traceback.format_exc())
        run.write_status(state="failed", error=f"{type(exc).__name__}: {exc}", finished=time.time())
        raise
    finally:
        if on_term:
            signal.signal(signal.SIGTERM, previous or signal.SIG_DFL)
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()


def queue_scope(run: RunDir) -> tuple[list[Path], Path]:
    """The run folders that share ``run``'s training queue, and the folder of its slot locks: its own
    runs folder, or every ``*/runs`` folder under ``TL_QUEUE_ROOT`` (a classroom's workspaces share
    one machine, so they share one queue)."""
    from . import settings

    root = settings.queue_root()
    if root is not None and run.path.resolve().is_relative_to(root):
        return [p for p in root.glob("*/runs/*") if p.is_dir()], root / ".slots"
    return [p for p in run.path.parent.iterdir() if p.is_dir()], run.path.parent / ".slots"


def first_in_line(run: RunDir) -> bool:
    """True when no live run sharing ``run``'s queue has been queued longer than ``run``. With at
    most one queued run per workspace (classroom), first come first served takes workspaces in turn."""
    mine = run.status().get("queued_at", 0)
    for other in queue_scope(run)[0]:
        if other == run.path or not (other / "status.json").is_file():
            continue
        st = read_json(other / "status.json", {}) or {}
        if st.get("state") == "queued" and st.get("queued_at", mine) < mine and pid_alive(st.get("pid")):
            return False
    return True


def wait_for_slot(run: RunDir, limit: int, on_wait=None, poll: float = 1.0):
    """Block until ``run`` is first in line and one of ``limit`` training slots of its runs folder
    is free; returns the open lock file, which holds the slot until it is closed or the process
    ends (even by SIGKILL: the OS drops the lock). This is the queue: at most ``limit`` trainings
    at once per runs folder, first come first served.
    """
    import fcntl

    slots = queue_scope(run)[1]
    slots.mkdir(parents=True, exist_ok=True)
    while True:
        for i in range(max(1, limit) if first_in_line(run) else 0):
            fh = open(slots / f"slot-{i}.lock", "a+")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fh
            except BlockingIOError:
                fh.close()
        if on_wait is not None:
            on_wait()
        time.sleep(poll)
