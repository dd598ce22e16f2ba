"""A warm training process: Python started, torch imported and the default backbone loaded before
the click.

A cold training process spends seconds before its first image: starting Python, importing torch
(4-5 s on two cores), reading the backbone's weights and preparing its kernels. For a class's 90
photos that is most of the run. A warm worker (``python -m tl_core worker``) pays those costs while
nobody waits, then waits for one job. Handed a run, it becomes that run's training process exactly as
``python -m tl_core train --run-dir`` would be: the same command code (pid in ``status.json``,
SIGTERM → clean stop, queue slot, stop file, failed/stopped recorded), its own process group (Stop
kills it like any run) and a resumable run directory. It trains one run and exits, so nothing of one
run leaks into the next; as it ends it starts its successor, so the next click finds one warm.

Hand-off through files in ``<cache>/warm/`` (no sockets; the folder is this user's only, mode 700):
the worker writes ``<pid>.ready`` when warm; a launcher claims it by renaming that to
``<pid>.claimed`` (atomic: one launcher wins), then writes ``<pid>.job``; the worker marks
``<pid>.running`` while it trains. No warm-up starts while every training slot is taken (by such
workers, or any run of the queue) or a run waits for one: it would take the CPU from a training.
A worker runs only a ``train`` job from a file its own user wrote, and it leaves when the app
server that started it (its owner) is gone, so no warm process outlives the app.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import settings

OWNER = "TL_WARM_OWNER"  # the pid of the app server a worker serves
CLAIM_TIMEOUT = 30.0  # a claimed worker whose job never comes (its launcher died) gives up
RETRY_AFTER_FAILURE = 600.0  # a warm-up that failed (no weights offline, ...) is not retried on every page view


def warm_dir() -> Path:
    return settings.cache_root() / "warm"


def _make_dir() -> Path:
    """The hand-off folder, readable and writable by this user only."""
    folder = warm_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077 and folder.stat().st_uid == os.getuid():
        folder.chmod(0o700)
    return folder


def _write_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    from .runs import pid_alive

    return pid_alive(pid)


def ready_workers(python: str | None = None) -> list[int]:
    """Pids of live warm workers of ``python`` (this interpreter by default) waiting for a job."""
    python = python or sys.executable
    pids = []
    for f in warm_dir().glob("*.ready"):
        try:
            info = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if info.get("python") == python and _alive(info.get("pid")):
            pids.append(info["pid"])
        elif not _alive(info.get("pid")):
            f.unlink(missing_ok=True)  # its worker died (killed, machine restarted)
    return sorted(pids)


def running_workers() -> list[int]:
    """Pids of workers claimed by a launcher or training the run they were handed (the markers of
    killed ones are removed)."""
    pids = set()
    for f in [*warm_dir().glob("*.claimed"), *warm_dir().glob("*.running")]:
        if f.stem.isdigit() and _alive(int(f.stem)):
            pids.add(int(f.stem))
        else:
            f.unlink(missing_ok=True)
    return sorted(pids)


def kill_workers() -> None:
    """SIGKILL every live worker this cache's hand-off folder names (starting, ready, claimed or
    running), with its process group: for a test or a benchmark that removes the folder afterwards.
    A pid that is no longer a tl_core process (a stale marker, a reused pid) is left alone."""
    import signal

    for f in warm_dir().glob("*.*"):
        stem = f.name.split(".")[0]
        if stem.isdigit() and _alive(int(stem)):
            try:
                os.killpg(int(stem), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def training_slots_taken(runs_dir: str | Path) -> bool:
    """True when a run of ``runs_dir``'s training queue waits for a slot, or every slot is held (by a
    warm or cold run, a lab's, an advice's): a warm-up now would share the CPU with a training."""
    import fcntl

    from .runs import RunDir, pid_alive, queue_scope, read_json

    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return False
    folders, slots = queue_scope(RunDir(runs_dir / "probe"))  # the queue a new run there would join
    for folder in folders:
        st = read_json(folder / "status.json", {}) or {}
        if st.get("state") == "queued" and pid_alive(st.get("pid")):
            return True
    for i in range(settings.max_concurrent()):
        try:
            fh = open(slots / f"slot-{i}.lock", "rb")
        except FileNotFoundError:
            return False  # never taken
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # held by a training
            fcntl.flock(fh, fcntl.LOCK_UN)
            return False
    return True


def prewarm(python: str | None = None, owner: int | None = None, runs_dir: str | Path | None = None) -> int | None:
    """Make sure a warm worker waits for the next run (start one when none does); its pid, or None
    when warm workers are switched off (``TL_WARM_IDLE=0``) or when a warm-up now would take the
    CPU from a training (every slot of ``runs_dir``'s queue taken, or a run waiting for one). The
    worker leaves when ``owner`` (this process by default: the app server) is gone."""
    if settings.warm_idle_seconds() <= 0:
        return None
    ready = ready_workers(python)
    if ready:
        return ready[0]
    if len(running_workers()) >= settings.max_concurrent() or (runs_dir and training_slots_taken(runs_dir)):
        # A worker whose run ends starts its successor then, and the Train page asks again on its
        # next rerun: a warm-up now (import torch, compile the backbone) would slow the training.
        return None
    starting = [int(f.stem) for f in warm_dir().glob("*.starting") if _alive(int(f.stem))]
    if starting:
        return starting[0]
    failed = warm_dir() / "failed"
    if failed.is_file() and time.time() - failed.stat().st_mtime < RETRY_AFTER_FAILURE:
        return None  # runs start cold meanwhile; worker.log says why
    from .launcher import process_env

    _make_dir()
    with open(warm_dir() / "worker.log", "ab") as log:
        proc = subprocess.Popen([python or sys.executable, "-m", "tl_core", "worker"], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                env={**process_env(), OWNER: str(owner or os.getpid())})
    (warm_dir() / f"{proc.pid}.starting").touch()
    return proc.pid


def hand_over(argv: list[str], python: str | None = None, on_claim=None) -> int | None:
    """Give the command ``argv`` (``["train", "--run-dir", ...]``) to a warm worker of ``python``;
    its pid, or None when none is ready (start a cold process then). ``on_claim(pid)`` runs after
    the claim and before the job is written."""
    from .launcher import process_env

    if settings.warm_idle_seconds() <= 0:  # switched off: every run starts cold
        return None
    for pid in ready_workers(python):
        try:
            os.rename(warm_dir() / f"{pid}.ready", warm_dir() / f"{pid}.claimed")
        except FileNotFoundError:
            continue  # another launcher claimed it first
        if on_claim is not None:
            on_claim(pid)
        env = {k: v for k, v in process_env().items() if k.startswith("TL_")}
        _write_atomic(warm_dir() / f"{pid}.job", {"argv": argv, "env": env, "handed": time.time()})
        return pid
    return None


def _warm_up() -> None:
    """Import what a run imports, load the default backbone and run it once in this machine's numerics."""
    import torch

    from . import commands, train  # noqa: F401 - importing is the point
    from .backbones import get_backbone
    from .distributed import to_channels_last
    from .model import build_model
    from .numerics import choose, frozen_forward

    spec = get_backbone(None)
    numerics = choose(spec)  # measured once per machine; a run then only reads it
    model = to_channels_last(build_model(spec, 2), spec.channels_last).eval()
    x = to_channels_last(torch.zeros(2, 3, spec.input_size, spec.input_size), spec.channels_last)
    frozen_forward(model, spec, numerics)(x)  # another engine compiles the frozen part now, not after the click


def serve(idle: float | None = None) -> int:
    """The worker: warm up, wait for a job (at most ``idle`` seconds, ``TL_WARM_IDLE``), run it, exit."""
    me, folder, owner = os.getpid(), _make_dir(), int(os.environ.get(OWNER) or os.getppid())
    try:
        _warm_up()
        _write_atomic(folder / f"{me}.ready", {"pid": me, "python": sys.executable, "warm": time.time()})
    except BaseException:
        (folder / "failed").touch()
        raise
    finally:
        (folder / f"{me}.starting").unlink(missing_ok=True)
    job = _wait_for_job(me, settings.warm_idle_seconds() if idle is None else idle, owner)
    if not job:
        (folder / f"{me}.running").unlink(missing_ok=True)
        return 0
    return _run(job, owner)


def _owner_alive(owner: int) -> bool:
    try:
        os.kill(owner, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _read_job(job_file: Path) -> dict | None:
    """The job in ``job_file`` if this user wrote it and it is a ``train`` command; else None."""
    try:
        mine = job_file.stat().st_uid == os.getuid()
        job = json.loads(job_file.read_text()) if mine else None
    except (OSError, json.JSONDecodeError):
        job = None
    job_file.unlink(missing_ok=True)
    ok = isinstance(job, dict) and isinstance(job.get("argv"), list) and job["argv"][:1] == ["train"] \
        and isinstance(job.get("env"), dict)
    return job if ok else None


def _wait_for_job(me: int, idle: float, owner: int) -> dict | None:
    folder = warm_dir()
    ready, claimed, job_file = folder / f"{me}.ready", folder / f"{me}.claimed", folder / f"{me}.job"
    deadline, claimed_at = time.time() + idle, None
    while True:
        if job_file.is_file():
            (folder / f"{me}.running").touch()  # before the claim goes: a launcher's claim counts as running
            claimed.unlink(missing_ok=True)
            return _read_job(job_file)
        if claimed.exists():
            claimed_at = claimed_at or time.time()
            if time.time() - claimed_at > CLAIM_TIMEOUT:
                claimed.unlink(missing_ok=True)
                return None
        elif time.time() > deadline or not _owner_alive(owner):
            try:
                os.rename(ready, folder / f"{me}.gone")  # un-advertise; fails when just claimed
            except FileNotFoundError:
                if claimed.exists() or job_file.is_file():
                    continue  # claimed just now: the job follows
                return None  # the folder was removed (the cache cleared): nobody can hand a job any more
            (folder / f"{me}.gone").unlink(missing_ok=True)
            return None
        time.sleep(0.02)


def _run(job: dict, owner: int) -> int:
    """Become the job's process: its settings, its output file, the CLI's own command; then start
    the successor."""
    from . import cli

    for key in [k for k in os.environ if k.startswith("TL_")]:
        os.environ.pop(key)
    os.environ.update(job["env"])  # the settings and language of the click, not of the warm-up
    out = _output_file(job["argv"])
    if out is not None:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    try:
        return cli.main(job["argv"])
    finally:
        sys.stdout.flush()
        (warm_dir() / f"{os.getpid()}.running").unlink(missing_ok=True)
        if _owner_alive(owner):
            prewarm(owner=owner, runs_dir=out.parent.parent if out else None)


def _output_file(argv: list[str]) -> Path | None:
    """Where a cold process of this command would write its output: the run's ``stdout.log``."""
    for flag in ("--run-dir", "--resume"):
        if flag in argv:
            return Path(argv[argv.index(flag) + 1]) / "stdout.log"
    return None
