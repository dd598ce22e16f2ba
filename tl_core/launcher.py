"""Start, watch and stop training processes (``python -m tl_core train --run-dir``).

Training runs in its own process group, talking to the UI only through files in the run
directory, so a browser refresh or a restart of the web server loses nothing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import settings
from .config import TrainConfig
from .errors import RunError
from .i18n import _, language
from .runs import TERMINAL_STATES, RunDir, list_jobs, pid_alive, run_state
from .warm import hand_over

# glibc's allocator returns big buffers to the OS after each forward pass and page-faults them
# back in on the next; keeping them made CPU training here 1.4-2.5x faster (see benchmarks).
FAST_MALLOC = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"


def launch(cfg: TrainConfig, runs_dir: str | Path, python: str | None = None, processes: int = 1,
           estimated_seconds: float | None = None) -> RunDir:
    """Create a run directory for ``cfg`` and start training it in a new process (``processes`` > 1:
    one per GPU through torchrun); returns at once. ``estimated_seconds`` (the Model page's estimate)
    is kept in its status, to be shown beside the real time.

    Raises:
        RunError: ``TL_MAX_QUEUED`` runs are already waiting for a training slot.
    """
    check_queue(runs_dir)
    run = RunDir.create(runs_dir)
    cfg.save(run.config_file)
    run.write_status(state="queued", created=time.time(), queued_at=time.time(), processes=processes,
                     estimated_seconds=round(estimated_seconds, 1) if estimated_seconds else None)
    start_process(run, python, processes=processes)
    return run


def start_process(run: RunDir, python: str | None = None, resume: bool = False, processes: int = 1) -> int:
    args = [python or sys.executable]
    if processes > 1:
        args += ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    args += ["-m", "tl_core", "train"]
    args += ["--resume", str(run.path)] if resume else ["--run-dir", str(run.path)]
    # A warm worker, when one waits; the status names it before it gets the job (it starts at once).
    pid = hand_over(args[3:], python, lambda pid: run.write_status(state="queued", pid=pid, warm=True)) \
        if processes == 1 else None
    if pid is not None:
        return pid
    return _spawn(run, args)


def launch_lab(data: str, runs_dir: str | Path, backbone: str | None = None, epochs: int = 5,
               python: str | None = None, repeats: int = 1) -> RunDir:
    """Start the scenario lab (``python -m tl_core lab``) on ``data`` in a new process; returns its folder."""
    check_queue(runs_dir)
    lab = RunDir.create(runs_dir, prefix="lab")
    lab.write_status(state="queued", created=time.time(), queued_at=time.time())
    args = [python or sys.executable, "-m", "tl_core", "lab", "--data", str(data), "--runs-dir", str(runs_dir),
            "--lab-dir", str(lab.path), "--epochs", str(epochs), "--repeats", str(repeats)] + (
                ["--backbone", backbone] if backbone else [])
    _spawn(lab, args)
    return lab


def launch_advice(data: str, runs_dir: str | Path, backbone: str | None = None, margin: float = 1.0,
                  python: str | None = None) -> RunDir:
    """Start the measured advice (``python -m tl_core advise --data``: measurement + short race) in a
    new process; it writes ``advice.json`` into the returned folder (not listed as a run). The race
    trains, so it waits in the training queue like a run, within the same limits."""
    check_queue(runs_dir)
    job = RunDir.create(runs_dir, prefix="advice")
    job.write_status(state="queued", created=time.time(), queued_at=time.time(), data=str(Path(data).resolve()))
    args = [python or sys.executable, "-m", "tl_core", "advise", "--data", str(data), "--json", "--margin", str(margin),
            "--job-dir", str(job.path)] + (["--backbone", backbone] if backbone else [])
    _spawn(job, args)
    return job


def check_queue(runs_dir: str | Path) -> None:
    """Refuse a new run when ``TL_MAX_QUEUED`` (default 8) runs already wait in its queue, or, when
    the queue is shared (``TL_QUEUE_ROOT``: a classroom), when this runs folder (one workspace)
    already has ``TL_MAX_QUEUED_PER_WORKSPACE`` (1) waiting: one student cannot fill the queue."""
    root = settings.queue_root()
    shared = root is not None and Path(runs_dir).resolve().is_relative_to(root)
    mine = [r for r in list_jobs(runs_dir) if run_state(r) == "queued"]
    if shared and len(mine) >= settings.max_queued_per_workspace():
        raise RunError(_("Your run {run} is already waiting for a training slot, and each workspace may have "
                         "{limit} waiting: wait until it starts, or stop it on the Train page, then start this one",
                         run=mine[0].id, limit=settings.max_queued_per_workspace()))
    folders = [p for p in root.glob("*/runs") if p.is_dir()] if shared else [Path(runs_dir)]
    waiting = sum(run_state(r) == "queued" for folder in folders for r in list_jobs(folder))
    limit = settings.max_queued()
    if waiting >= limit:
        raise RunError(_("{n} runs are already waiting for a training slot (the limit is {limit}, TL_MAX_QUEUED): "
                         "wait for one to finish or stop one on the Runs page", n=waiting, limit=limit))


ADVICE_FILE = "advice.json"


def process_env() -> dict[str, str]:
    """The environment of a training process: the reader's language, tl_core importable, and the
    allocator setting that keeps big buffers (fast here, but it never returns memory, so only
    short-lived training and extraction processes get it, never the web server)."""
    return {**os.environ, "TL_LANG": language(), "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES", FAST_MALLOC),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH")]))}


def _spawn(run: RunDir, args: list[str]) -> int:
    with open(run.path / "stdout.log", "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=process_env())
    run.write_status(state="queued", pid=proc.pid)
    return proc.pid


def resume(run: RunDir, python: str | None = None) -> int:
    """Continue an interrupted run in a new process, within the queue limit like a new run."""
    check_queue(run.path.parent)
    return start_process(run, python, resume=True, processes=run.status().get("processes", 1))


def stop(run: RunDir, grace: float = 10.0) -> str:
    """Ask a run to stop: the stop file first (clean stop between batches), then SIGTERM, then
    SIGKILL to its process group. Returns the state afterwards."""
    run.request_stop()
    pid = run.status().get("pid")
    deadline = time.time() + grace
    while pid_alive(pid) and time.time() < deadline:
        time.sleep(0.2)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not pid_alive(pid):
            break
        try:
            os.killpg(os.getpgid(int(pid)), sig)  # the whole group: torchrun and all its ranks
        except (ProcessLookupError, PermissionError):
            break
        time.sleep(1.0)
    state = run_state(run)
    if state in ("running", "interrupted", "queued"):
        run.write_status(state="stopped", finished=time.time())
        state = "stopped"
    return state


def is_live(run: RunDir) -> bool:
    return run_state(run) not in TERMINAL_STATES


def delete_run(run: RunDir) -> None:
    """Delete a finished run (or lab) folder and everything in it.

    Raises:
        RunError: the run is still queued or training (stop it first).
    """
    if is_live(run):
        raise RunError(_("{run} is still {state}: stop it first", run=run.id, state=_(run_state(run))))
    from .sharing import unpublish

    unpublish(run)  # its web page too: a deleted run's model is not left at an address
    shutil.rmtree(run.path, ignore_errors=True)
