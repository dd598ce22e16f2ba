"""DistributedDataParallel through torchrun: 2 CPU processes (gloo) on a tiny data set."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import PYTHON, ROOT, make_folder

pytestmark = pytest.mark.slow


def torchrun(*args: str, tmp_path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TL_DEVICE": "cpu", "TL_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run([PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           "-m", "tl_core", "train", *args, "--runs-dir", str(tmp_path / "runs"), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def test_two_processes_train_one_run_on_different_batches(tmp_path):
    data = make_folder(tmp_path / "data", per_class=10)
    proc = torchrun("--data", str(data), "--scenario", "3", "--head-epochs", "2", "--epochs", "2", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1  # only rank 0 reports
    result = json.loads(lines[0])
    run = ROOT / result["run_dir"]
    assert result["stop_reason"] == "completed" and result["test_accuracy"] is not None
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [run.name]  # one run directory, not one per rank
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "succeeded" and status["processes"] == 2 and status["device"].startswith("CPU")
    info = json.loads((run / "distributed.json").read_text())
    assert info["processes"] == 2 and info["backend"] == "gloo"
    n_train = len(json.loads((run / "split.json").read_text())["train"])
    for stage in ("head", "finetune"):
        rank0, rank1 = info["first_epoch_samples"][stage]
        assert rank0 and rank1 and not set(rank0) & set(rank1)  # different samples
        assert set(rank0) | set(rank1) == set(range(n_train))  # together: the whole training set
    # rank 0 alone wrote the metrics: one record per epoch, not two
    epochs = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [(r["stage"], r["epoch"]) for r in epochs if r["kind"] == "epoch"]
    assert sorted(epochs) == [("finetune", 1), ("finetune", 2), ("head", 1), ("head", 2)]
    assert (run / "checkpoints" / "best.pt").is_file() and (run / "eval.json").is_file()


def test_bad_data_fails_every_rank_instead_of_hanging(tmp_path):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    proc = torchrun("--data", str(tmp_path / "empty"), tmp_path=tmp_path, timeout=120)
    assert proc.returncode != 0
    assert "error:" in proc.stderr
