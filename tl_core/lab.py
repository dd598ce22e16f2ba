"""The scenario lab: train all four scenarios on the same data with the same short budget and put
accuracy, trainable parameters and time side by side, next to what the advisor measured.

Each scenario is a normal run (its own run directory, visible on the Runs page). The lab folder
holds ``lab.json`` (updated after every scenario, so a page can show results as they arrive) and
``status.json`` (state and pid, like a run's).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from .backbones import DEFAULT_BACKBONE
from .config import TrainConfig
from .freezing import SCENARIOS
from .i18n import _
from .runs import RunDir, lifecycle, read_json, write_json_atomic
from .stats import interval_text, paired
from .train import train_run

log = logging.getLogger("tl_core.lab")
LAB_FILE = "lab.json"
DEFAULT_FINETUNE_EPOCHS = 5


def lab_configs(data: str, test_data: str | None = None, *, backbone: str | None = None,
                epochs: int = DEFAULT_FINETUNE_EPOCHS, cache_dir: str | None = None,
                seed: int = 0) -> list[TrainConfig]:
    """The fixed budget: scenario 1 trains its head on cached features (default epochs, seconds);
    scenarios 2-4 get the same head warm-up and ``epochs`` fine-tuning epochs, no augmentation (so
    2 and 3 use the frozen-prefix cache), same split and seed."""
    return [TrainConfig(data=str(Path(data).resolve()), test_data=str(Path(test_data).resolve()) if test_data else None,
                        backbone=backbone or DEFAULT_BACKBONE, scenario=k, epochs=None if k == 1 else epochs,
                        augment="none", cache_dir=cache_dir, seed=seed)
            for k in sorted(SCENARIOS)]


def run_lab(data: str, test_data: str | None = None, runs_dir: str | Path = "runs", *, backbone: str | None = None,
            epochs: int = DEFAULT_FINETUNE_EPOCHS, lab: RunDir | None = None, cache_dir: str | None = None,
            on_run=None, repeats: int = 1) -> dict:
    """Measure the advice, then train the four scenarios one after the other.

    Args:
        lab: the lab folder to keep ``lab.json`` in (a new one in ``runs_dir`` when None).
        on_run: called with each scenario's ``RunDir`` before it trains (the CLI uses it to forward
            a stop request to the run in progress).
        repeats: train every scenario with seeds 0..repeats-1 (each seed its own split, head and
            batch order), to see the spread; comparisons photo by photo use seed 0.

    Returns:
        ``{"advised": K, "measurement": ..., "scenarios": [{"scenario", "test_accuracy", "seconds",
        "trainable_params", "run_dir", ...} x 4]}``; scenarios stopped early are marked so.
    """
    from .backbones import group_table
    from .data import scan_folder
    from .measure import measure

    lab = lab or RunDir.create(runs_dir, prefix="lab")
    t0 = time.time()
    configs = [cfg for seed in range(max(1, repeats))
               for cfg in lab_configs(data, test_data, backbone=backbone, epochs=epochs, cache_dir=cache_dir, seed=seed)]
    _names, counts, flops = group_table(configs[0].backbone)
    weights = lab_weights(configs[:len(SCENARIOS)], len(scan_folder(data).items), counts, flops)
    write_json_atomic(lab.path / LAB_FILE, {"data": str(data), "weights": weights, "started": t0})
    measurement = measure(data, backbone)
    state = {"data": str(data), "test_data": test_data, "backbone": measurement["evidence"]["backbone"],
             "epochs": epochs, "advised": measurement["scenario"], "measurement": measurement,
             "scenarios": [], "started": t0, "weights": weights, "repeats": max(1, repeats)}
    write_json_atomic(lab.path / LAB_FILE, state)
    for cfg in configs:
        if lab.stop_requested():
            break
        run = RunDir.create(runs_dir, prefix=f"lab-s{cfg.scenario}" + (f"-seed{cfg.seed}" if cfg.seed else ""))
        cfg.save(run.config_file)
        state["current"] = {"scenario": cfg.scenario, "seed": cfg.seed, "run_dir": str(run.path)}
        write_json_atomic(lab.path / LAB_FILE, state)
        if on_run:
            on_run(run)
        log.info("lab: scenario %d in %s", cfg.scenario, run.path)
        with lifecycle(run, on_term=None):  # the lab's own SIGTERM handler forwards stops
            result = train_run(run, cfg)
        state["scenarios"].append({
            "scenario": cfg.scenario, "seed": cfg.seed, "title": SCENARIOS[cfg.scenario].title,
            "test_accuracy": result["test_accuracy"], "val_accuracy": result["val_accuracy"],
            "seconds": result["seconds"], "trainable_params": result["trainable_params"],
            "frozen_fraction": result["frozen_fraction"], "epochs_run": result["epochs_run"],
            "stopped": result["stop_reason"] == "stopped", "run_dir": result["run_dir"],
            # For comparisons paired on the same test images (every scenario sees the same split).
            "test_images": result["test_images"], "test_wrong": _wrong_paths(run)})
        state.pop("current", None)
        write_json_atomic(lab.path / LAB_FILE, state)
        if result["stop_reason"] == "stopped":
            break
    state["seconds"] = round(time.time() - t0, 1)
    write_json_atomic(lab.path / LAB_FILE, state)
    return {"advised": state["advised"], "scenarios": state["scenarios"], "measurement": measurement,
            "lab_dir": str(lab.path), "seconds": state["seconds"]}


def lab_weights(configs: list[TrainConfig], n_images: int, group_counts, flops) -> dict[str, float]:
    """Each part's expected cost (``progress.run_budget``, in image forward passes): "measure"
    (two passes over a sample of at most 30 images per class, as ``measure`` takes) and each
    scenario, so the lab's bar moves as the work does."""
    from .progress import run_budget
    from .recipe import plan_run, train_images

    weights = {"measure": 2.0 * min(n_images, 300)}
    for cfg in configs:
        n_train = train_images(n_images, cfg)
        n_val = round(n_images * cfg.val_fraction)
        weights[str(cfg.scenario)] = round(run_budget(plan_run(cfg, group_counts, n_train), n_train, n_val,
                                                      n_images, flops).total, 1)
    return weights


def lab_progress(state: dict, current: float = 0.0) -> float:
    """Share of the lab's expected work done: the measurement, the finished scenarios and
    ``current`` (the running scenario's own progress, 0..1) of the one in progress."""
    weights = state.get("weights") or {"measure": 0.0, **{str(k): 1.0 for k in SCENARIOS}}
    done = weights["measure"] if "measurement" in state else 0.0
    done += sum(weights.get(str(s["scenario"]), 0.0) for s in state.get("scenarios", []))
    if cur := state.get("current"):
        done += weights.get(str(cur["scenario"]), 0.0) * min(max(current, 0.0), 1.0)
    total = weights.get("measure", 0.0) + state.get("repeats", 1) * sum(w for k, w in weights.items() if k != "measure")
    return round(min(1.0, done / (total or 1.0)), 4)


def _wrong_paths(run: RunDir) -> list[str]:
    return sorted(m["path"] for m in (read_json(run.eval_file, {}) or {}).get("test", {}).get("misclassified", []))


def _interval(s: dict) -> str:
    """" (95% interval 74-97%)" for a scenario row that knows its number of test images."""
    if not s.get("test_images"):
        return ""
    return _(" (95% interval {interval})", interval=interval_text(s["test_accuracy"], s["test_images"]))


def _paired_verdict(best: dict, pick: dict) -> str:
    """Whether best and pick really differ, image by image on the same test photos."""
    if best.get("test_wrong") is None or pick.get("test_wrong") is None:
        return ""
    cmp = paired(best["test_wrong"], pick["test_wrong"])
    fields = dict(n=best["test_images"], a=cmp["only_a_right"], b=cmp["only_b_right"], p=cmp["p"])
    if not cmp["only_a_right"] and not cmp["only_b_right"]:
        return _(" Both got exactly the same {n} test photos right or wrong.", **fields)
    if cmp["measurable"]:
        return _(" Photo by photo on the same {n} test photos: {a} only the best got right, {b} only the pick: "
                 "a real difference (paired test, p = {p:.3f}).", **fields)
    return _(" Photo by photo on the same {n} test photos: {a} only the best got right, {b} only the pick: "
             "no measurable difference (paired test, p = {p:.2f}); the gap may be chance.", **fields)


def cheaper_in_lab(done: list[dict], best: dict, margin: float = 1.0) -> dict | None:
    """The fastest finished scenario, faster than ``best``, that is below it by less than ``margin``
    points or by no measurable difference on the same test photos (paired test); None if none."""
    out = []
    for s in done:
        if s is best or s["seconds"] >= best["seconds"]:
            continue
        gap = 100 * (best["test_accuracy"] - s["test_accuracy"])
        noise = best.get("test_wrong") is not None and s.get("test_wrong") is not None and not paired(
            best["test_wrong"], s["test_wrong"])["measurable"]
        if gap < margin or noise:
            out.append(s)
    return min(out, key=lambda s: s["seconds"], default=None)


def _cheaper_text(done: list[dict], best: dict, margin: float) -> str:
    cheap = cheaper_in_lab(done, best, margin)
    if cheap is None:
        return ""
    return _(" Accuracy per minute: scenario {n} reached {acc:.1%} in {seconds:.0f} s, {gap:.1f} points below the "
             "best at {ratio:.1f}x less time (less than the {margin:g}-point margin or the noise): the cheaper pick.",
             n=cheap["scenario"], acc=cheap["test_accuracy"], seconds=cheap["seconds"],
             gap=100 * (best["test_accuracy"] - cheap["test_accuracy"]),
             ratio=best["seconds"] / max(cheap["seconds"], 1e-9), margin=margin)


def summarize_lab(state: dict, margin: float = 1.0) -> str:
    """The best scenario with its interval, whether the advisor's pick was within 1 point of it
    and measurably worse on the same test images, and a cheaper pick within ``margin`` or the noise."""
    finished = [s for s in state.get("scenarios", []) if s.get("test_accuracy") is not None]
    done = [s for s in finished if not s.get("seed")]  # one split: compared photo by photo
    if not done:
        return _("No scenario has finished yet.")
    return _summary_of_one_split(state, done, margin) + spread_text(finished)


def spread(rows: list[dict]) -> dict[int, dict]:
    """Per scenario over its seeds: mean, lowest and highest test accuracy, and how many seeds."""
    out: dict[int, dict] = {}
    for s in rows:
        out.setdefault(s["scenario"], []).append(s["test_accuracy"])
    return {k: {"mean": sum(v) / len(v), "low": min(v), "high": max(v), "n": len(v)} for k, v in sorted(out.items())}


def spread_text(rows: list[dict]) -> str:
    """" Over 3 seeds (each its own split): scenario 1 95.2% (94.8-95.5%), ..." when some scenario ran
    more than once, else an empty string."""
    table = spread(rows)
    n = max((v["n"] for v in table.values()), default=1)
    if n < 2:
        return ""
    parts = [_("scenario {k} {mean:.1%} ({low:.1%}-{high:.1%})", k=k, **v) for k, v in table.items()]
    return _(" Over {n} seeds (each its own split, head and batch order): {parts}.", n=n, parts=", ".join(parts))


def _summary_of_one_split(state: dict, done: list[dict], margin: float) -> str:
    best = max(done, key=lambda s: (s["test_accuracy"], -s["seconds"]))
    text = _("Best: scenario {n} with {acc:.1%} test accuracy{interval} ({params:,} trainable parameters, "
             "{seconds:.0f} s).", n=best["scenario"], acc=best["test_accuracy"], interval=_interval(best),
             params=best["trainable_params"], seconds=best["seconds"])
    text += _cheaper_text(done, best, margin)
    pick = next((s for s in done if s["scenario"] == state.get("advised")), None)
    if pick is None:
        return text + _(" The advisor's pick, scenario {n}, has not finished.", n=state.get("advised"))
    gap = 100 * (best["test_accuracy"] - pick["test_accuracy"])
    if pick is best:
        return text + _(" That is the scenario the advisor picked.")
    verdict = _("within 1 point of the best") if gap <= 1.0 else _("{gap:.1f} points below the best", gap=gap)
    return text + _(" The advisor picked scenario {n}: {acc:.1%} in {seconds:.0f} s, {verdict}.", n=pick["scenario"],
                    acc=pick["test_accuracy"], seconds=pick["seconds"], verdict=verdict) + _paired_verdict(best, pick)


def read_lab(lab_dir: str | Path) -> dict:
    return read_json(Path(lab_dir) / LAB_FILE, {}) or {}
