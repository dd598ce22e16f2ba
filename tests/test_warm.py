"""The warm worker: a run handed to it trains end to end as its own process, writes the same run
directory, can be stopped, killed and resumed, and leaves a warm successor for the next click."""

from __future__ import annotations

import os
import signal

import pytest

from conftest import held, wait_for
from tl_core.config import TrainConfig
from tl_core.launcher import launch, resume, stop
from tl_core.predict import Predictor
from tl_core.runs import run_state
from tl_core.warm import kill_workers, prewarm, ready_workers, warm_dir

pytestmark = pytest.mark.slow


@pytest.fixture()
def warm_env(tmp_path, monkeypatch):
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TL_WARM_IDLE", "300")
    yield tmp_path
    kill_workers()  # successors are started by workers, not by the test: end every one this folder knows


def _state(run, states, timeout=240):
    return wait_for(lambda: run_state(run) in states and run_state(run), timeout,
                    f"{run.id} to be {states} (log: {run.path / 'stdout.log'})")


def _warm(timeout=240) -> int:
    return wait_for(lambda: ready_workers() and ready_workers()[0], timeout, "a warm worker")


def test_a_warm_worker_trains_a_run_leaves_a_successor_and_leaves_with_its_server(warm_env, image_folder):
    import subprocess
    import sys

    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # stands in for the app
    try:
        _train_and_succeed(warm_env, image_folder, server.pid)
    finally:
        server.kill()
        server.wait()
    wait_for(lambda: not ready_workers(), 60, "the warm worker to leave when its server is gone")


def _train_and_succeed(warm_env, image_folder, server: int) -> None:
    first = prewarm(owner=server)
    assert first and prewarm(owner=server) == first  # one worker, however often the page asks
    assert _warm() == first
    cfg = TrainConfig(data=str(image_folder), scenario=1, epochs=3, cache_dir=str(warm_env / "cache" / "features"))
    run = launch(cfg, warm_env / "runs")
    assert run.status()["pid"] == first and run.status()["warm"] is True
    assert _state(run, {"succeeded", "failed"}) == "succeeded", (run.path / "stdout.log").read_text()
    result = run.status()["result"]
    assert result["epochs_run"] == 3 and result["val_accuracy"] is not None
    # The command's own output, in the run's log (printed just after the status says succeeded).
    wait_for(lambda: "run " in (run.path / "stdout.log").read_text(), 30, "the command's last line in stdout.log")
    assert Predictor.from_run(run.path).predict([str(next(image_folder.rglob("*.jpg")))], k=1)
    successor = _warm()
    assert successor != first


def test_a_worker_runs_only_a_train_job_its_own_user_wrote(tmp_path):
    import json

    from tl_core.warm import _read_job

    job = tmp_path / "1.job"
    for argv, ok in ((["train", "--run-dir", "x"], True), (["predict", "--trust", "evil.pt", "a.jpg"], False),
                     ("train", False), ([], False)):
        job.write_text(json.dumps({"argv": argv, "env": {}}))
        assert (_read_job(job) is not None) is ok, argv
        assert not job.exists()  # read once, whatever it held
    job.write_text("{not json")
    assert _read_job(job) is None


def test_a_warm_run_can_be_stopped_killed_and_resumed(warm_env, image_folder, monkeypatch):
    cfg = TrainConfig(data=str(image_folder), scenario=1, augment="light", epochs=6, batch_size=8, patience=0,
                      cache_dir=str(warm_env / "cache" / "features"))
    monkeypatch.setenv("TL_TEST_HOLD_AFTER_EPOCH", "1")  # handed to the worker with the job
    prewarm()
    worker = _warm()
    run = launch(cfg, warm_env / "runs")
    held(run, 1)
    assert run.status()["pid"] == worker
    # The Train page asks for a warm worker on every rerun; while this one trains, a new one warming
    # up (importing torch, compiling the backbone) would take the CPU from the run it was meant to
    # speed up: the running worker starts its successor when it ends.
    assert prewarm() is None and not list(warm_dir().glob("*.starting"))
    assert stop(run) == "stopped"  # the stop file, as for a cold run

    worker = _warm()  # the stopped run's worker started its successor
    run = launch(cfg, warm_env / "runs")
    held(run, 1)
    os.killpg(os.getpgid(worker), signal.SIGKILL)
    assert _state(run, {"interrupted"}) == "interrupted"
    assert prewarm() is not None  # a killed worker's run no longer counts as running
    monkeypatch.delenv("TL_TEST_HOLD_AFTER_EPOCH")
    resume(run)
    assert _state(run, {"succeeded", "failed"}) == "succeeded", (run.path / "stdout.log").read_text()
    epochs = [m["epoch"] for m in run.metrics() if m["kind"] == "epoch"]
    assert epochs == list(range(1, 7))  # epoch 1 from before the kill, then 2-6: nothing twice


def test_a_waiting_worker_whose_folder_was_removed_leaves_instead_of_spinning(tmp_path, monkeypatch):
    """Its server gone, a worker un-advertises itself by renaming its ready file; when the cache
    folder had been deleted meanwhile (a user clearing the cache, a benchmark's temporary folder)
    that file is gone too, and the worker must leave, not retry the rename forever at full CPU."""
    import threading

    from tl_core.warm import _wait_for_job

    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path / "gone"))  # never created: the folder was removed
    done = []
    waiter = threading.Thread(target=lambda: done.append(_wait_for_job(os.getpid(), 0, owner=os.getpid())),
                              daemon=True)
    waiter.start()
    waiter.join(10)
    assert done == [None] and not waiter.is_alive()


def test_no_warm_up_while_every_training_slot_is_held_or_a_run_waits(tmp_path, monkeypatch):
    """A cold run, a lab's or an advice's holds the queue's slot as a warm worker's run does; a warm-up
    then (import torch, compile the backbone) would share the 2 cores with that training."""
    import fcntl

    from tl_core.runs import RunDir
    from tl_core.warm import training_slots_taken

    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TL_WARM_IDLE", "300")
    runs = tmp_path / "runs"
    runs.mkdir()
    assert not training_slots_taken(runs)  # nothing ever trained here
    (runs / ".slots").mkdir()
    with open(runs / ".slots" / "slot-0.lock", "a+") as slot:  # what a training holds (runs.wait_for_slot)
        assert not training_slots_taken(runs)
        fcntl.flock(slot, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert training_slots_taken(runs)
        assert prewarm(runs_dir=runs) is None and not warm_dir().is_dir()  # nothing started
        monkeypatch.setenv("TL_MAX_CONCURRENT", "2")
        assert not training_slots_taken(runs)  # a second slot is free
        monkeypatch.delenv("TL_MAX_CONCURRENT")
    assert not training_slots_taken(runs)  # released (the OS drops it when a killed run's process ends)
    import subprocess
    import sys

    waiter = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "tl_core"])  # a queued run
    try:
        waiting = RunDir.create(runs)
        waiting.write_status(state="queued", pid=waiter.pid, queued_at=0)
        assert training_slots_taken(runs)
    finally:
        waiter.kill()
        waiter.wait()
    assert not training_slots_taken(runs)  # its process is gone
