"""Training in its own process: launch, stop, kill -> interrupted -> resume."""

from __future__ import annotations

import os
import signal
import time

import pytest

from conftest import held
from tl_core.config import TrainConfig
from tl_core.launcher import is_live, launch, start_process, stop
from tl_core.runs import run_state

pytestmark = pytest.mark.slow


def _wait(run, states, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if run_state(run) in states:
            return run_state(run)
        time.sleep(0.5)
    raise AssertionError(f"run stayed {run_state(run)}; log: {run.log_file.read_text() if run.log_file.exists() else ''}")


def _epochs(run):
    return [m for m in run.metrics() if m["kind"] == "epoch"]


def test_launch_stop_kill_and_resume(tmp_path, image_folder, cache_dir, monkeypatch):
    # Every stop and kill lands at a named point (the run holds after an epoch), not at a speed.
    cfg = TrainConfig(data=str(image_folder), scenario=1, augment="light", epochs=40, batch_size=8, patience=0,
                      cache_dir=str(cache_dir))
    monkeypatch.setenv("TL_TEST_HOLD_AFTER_EPOCH", "1")
    run = launch(cfg, tmp_path / "runs")
    assert is_live(run)
    held(run, 1)
    assert stop(run) == "stopped"
    assert not is_live(run) and len(_epochs(run)) == 1

    monkeypatch.setenv("TL_TEST_HOLD_AFTER_EPOCH", "2")
    run2 = launch(cfg.replace(epochs=6), tmp_path / "runs")
    held(run2, 2)
    os.killpg(run2.status()["pid"], signal.SIGKILL)
    assert _wait(run2, {"interrupted"}) == "interrupted"
    assert [m["epoch"] for m in _epochs(run2)] == [1, 2]
    monkeypatch.delenv("TL_TEST_HOLD_AFTER_EPOCH")
    start_process(run2, resume=True)
    assert _wait(run2, {"succeeded", "failed"}) == "succeeded", run2.status()
    assert [m["epoch"] for m in _epochs(run2)] == [1, 2, 3, 4, 5, 6]  # epochs 3-6 trained after the kill
    assert run2.status()["result"]["test_accuracy"] is not None


def test_queue_runs_one_at_a_time(tmp_path, image_folder, cache_dir, monkeypatch):
    monkeypatch.setenv("TL_MAX_CONCURRENT", "1")
    monkeypatch.setenv("TL_TEST_HOLD_AFTER_EPOCH", "1")
    cfg = TrainConfig(data=str(image_folder), scenario=1, augment="light", epochs=2, batch_size=8, patience=0,
                      cache_dir=str(cache_dir))
    first = launch(cfg.replace(epochs=100), tmp_path / "runs")
    second = launch(cfg, tmp_path / "runs")
    held(first, 1)  # the first run holds the only slot for as long as the test wants
    assert run_state(second) == "queued"
    third = launch(cfg, tmp_path / "runs")
    assert stop(third) == "stopped"  # a queued run can be cancelled
    assert stop(first) == "stopped"
    held(second, 1)
    (second.path / "release").touch()
    assert _wait(second, {"succeeded"}) == "succeeded"
    assert second.status()["started"] >= first.status()["finished"] - 1


def test_training_survives_the_server_that_started_it(tmp_path, image_folder, cache_dir):
    """The web server dies (SIGKILL) right after starting a run: the run goes on to the end."""
    import subprocess
    import sys

    from conftest import ROOT
    from tl_core.runs import RunDir

    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
              "from tl_core.config import TrainConfig\nfrom tl_core.launcher import launch\n"
              f"run = launch(TrainConfig(data={str(image_folder)!r}, scenario=1, epochs=3, "
              f"cache_dir={str(cache_dir)!r}), {str(tmp_path / 'runs')!r})\n"
              "print(run.path, flush=True)\nimport time; time.sleep(600)\n")
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    run = RunDir(server.stdout.readline().strip())
    server.kill()
    server.wait()
    assert _wait(run, {"succeeded", "failed"}) == "succeeded"


def test_a_crash_inside_training_is_recorded_with_its_reason(tmp_path, image_folder, cache_dir, monkeypatch):
    import tl_core.engine as engine
    from tl_core.cli import main
    from tl_core.runs import RunDir

    def boom(self):
        raise RuntimeError("simulated bug in the loop")

    monkeypatch.setattr(engine.Trainer, "fit", boom)
    code = main(["train", "--data", str(image_folder), "--scenario", "1", "--runs-dir", str(tmp_path / "runs"),
                 "--cache-dir", str(cache_dir)])
    assert code == 1
    run = RunDir(next((tmp_path / "runs").glob("2*")))
    assert run_state(run) == "failed"
    assert run.status()["error"] == "RuntimeError: simulated bug in the loop"
    assert "simulated bug in the loop" in run.log_file.read_text()


def test_resuming_a_live_run_is_refused(tmp_path, image_folder, cache_dir, monkeypatch):
    from conftest import run_cli

    monkeypatch.setenv("TL_TEST_HOLD_AFTER_EPOCH", "1")
    cfg = TrainConfig(data=str(image_folder), scenario=1, augment="light", epochs=50, batch_size=8,
                      cache_dir=str(cache_dir))
    run = launch(cfg, tmp_path / "runs")
    held(run, 1)
    proc = run_cli("train", "--resume", str(run.path))
    assert proc.returncode == 2 and "already running" in proc.stderr
    assert stop(run) == "stopped"
