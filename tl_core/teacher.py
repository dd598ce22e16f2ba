"""What the teacher sees of a classroom: every workspace with its runs and best score, a leaderboard
per data set, and every live run (to stop one). Plain data for the teacher page; no UI here."""

from __future__ import annotations

from pathlib import Path

from .runs import RunDir, is_lab, list_jobs, list_runs, read_json, run_state
from .workspaces import Workspace, list_workspaces, usage_bytes


def _score(run: RunDir) -> float | None:
    return ((run.status().get("result") or {}).get("test_accuracy"))


def _data_name(run: RunDir) -> str:
    return Path((read_json(run.config_file, {}) or {}).get("data") or "").name


def overview() -> list[dict]:
    """One row per workspace: name, runs, live runs, best test accuracy, disk used by images."""
    rows = []
    for ws in list_workspaces():
        runs = [r for r in list_runs(ws.runs_dir) if not is_lab(r.path)]
        scores = [s for s in map(_score, runs) if s is not None]
        rows.append({"workspace": ws.id, "name": ws.name, "runs": len(runs),
                     "live": sum(run_state(r) in ("queued", "running") for r in list_runs(ws.runs_dir)),
                     "best_test_accuracy": max(scores) if scores else None, "mb": usage_bytes(ws) / 1e6})
    return rows


def leaderboard() -> dict[str, list[dict]]:
    """Per data set (by folder name), each workspace's best run on it, best first."""
    boards: dict[str, dict[str, dict]] = {}
    for ws in list_workspaces():
        for run in list_runs(ws.runs_dir):
            score = None if is_lab(run.path) else _score(run)
            if score is None:
                continue
            board = boards.setdefault(_data_name(run), {})
            if ws.id not in board or score > board[ws.id]["test_accuracy"]:
                cfg = read_json(run.config_file, {}) or {}
                board[ws.id] = {"name": ws.name, "test_accuracy": score, "run": run.id,
                                "test_images": (run.status().get("result") or {}).get("test_images"),
                                "backbone": cfg.get("backbone"), "scenario": cfg.get("scenario")}
    return {data: sorted(board.values(), key=lambda row: -row["test_accuracy"])
            for data, board in sorted(boards.items())}


def live_runs() -> list[tuple[Workspace, RunDir]]:
    """Every queued or training run, lab and advice race of the class, with its workspace."""
    return [(ws, run) for ws in list_workspaces() for run in list_jobs(ws.runs_dir)
            if run_state(run) in ("queued", "running")]
