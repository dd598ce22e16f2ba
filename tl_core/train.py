"""One training run, start to finish: data, freeze plan, two-stage recipe, checkpoints, evaluation.

Stage "head": the backbone is frozen and only the new head trains, on cached features when
augmentation is off. Stage "finetune" (scenarios 2-4): unfreeze to the plan and train with
discriminative learning rates. The best checkpoint of either stage is evaluated on the test part.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from dataclasses import replace

import torch

from . import checkpoints as ckpt
from . import distributed
from .backbones import get_backbone
from .calibration import CALIBRATION_FILE, calibrate
from .config import TrainConfig
from .data import Scan, duplicate_issues, scan_folder, validate
from .errors import CancelTraining, DatasetError, TLError
from .evaluate import compute_metrics
from .model import build_model
from .numerics import NUMERICS_FILE, Numerics, choose, for_device
from .recipe import plan_run, resolved_config
from .runs import RunDir, read_json, write_json_atomic
from .splits import make_split, split_from_json, split_summary, split_to_json
from .stages import RunParts, Stages

log = logging.getLogger("tl_core.train")


def prepare_data(cfg: TrainConfig, run: RunDir | None = None) -> tuple[Scan, dict, dict]:
    """Scan, validate and split the data; raises ``DatasetError`` listing every blocking problem."""
    report, clean = validate(scan_folder(cfg.data))
    test_scan = None
    if cfg.test_data:
        test_report, test_scan = validate(scan_folder(cfg.test_data))
        report.issues += [i for i in test_report.issues if i.level == "warning"]
    if cfg.max_images_per_class:
        clean = _cap_per_class(clean, cfg.max_images_per_class)
    split = {}
    if report.ok:
        split = make_split(clean, cfg.val_fraction, cfg.test_fraction, cfg.seed, test_scan)
        split_scan = Scan(clean.root, clean.classes, split)
        known = {frozenset(i.paths) for i in report.issues if i.code == "duplicate_across_splits"}
        report.issues += [i for i in duplicate_issues(split_scan)
                          if i.code == "duplicate_across_splits" and frozenset(i.paths) not in known]
    if run is not None:
        write_json_atomic(run.path / "report.json", report.to_dict())
    if not report.ok:
        raise DatasetError(" ; ".join(i.message for i in report.errors()))
    return clean, split, report.to_dict()


def _cap_per_class(scan: Scan, cap: int) -> Scan:
    parts = {}
    for part, items in scan.parts.items():
        kept, seen = [], Counter()
        for it in items:
            seen[it.label] += 1
            if seen[it.label] <= cap:
                kept.append(it)
        parts[part] = kept
    return replace(scan, parts=parts)  # the excluded images too: they hold their places in the split


def _load_resume_state(run: RunDir, trim: bool = True) -> dict | None:
    """The last checkpoint, with metrics.jsonl trimmed to it: epochs logged after the last save
    (lost when the process was killed) are trained again and must not appear twice."""
    if not run.checkpoint("last").is_file():
        return None
    last = ckpt.load_checkpoint(run.checkpoint("last"))
    if not trim:
        return last
    order = {"head": 0, "finetune": 1}
    mark = (order[last["stage"]], last["epoch"])
    kept = [r for r in run.metrics() if (order.get(r.get("stage"), 0), r.get("epoch", 0)) <= mark]
    tmp = run.metrics_file.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
    os.replace(tmp, run.metrics_file)
    return last


def _prepare_run(run: RunDir, cfg: TrainConfig, resume: bool) -> tuple[list[str], dict]:
    if resume and run.split_file.is_file():
        data = read_json(run.split_file)
        return data["classes"], split_from_json(data)
    clean, split = prepare_data(cfg, run)[:2]
    write_json_atomic(run.split_file, split_to_json(split, clean.classes, cfg.seed))
    write_json_atomic(run.labels_file, clean.classes)
    log.info("data: %s", split_summary(split, clean.classes))
    return clean.classes, split


def train_run(run: RunDir, cfg: TrainConfig | None = None, resume: bool = False) -> dict:
    """Train (or resume) the run in ``run``; returns the summary, also written to ``status.json``.

    Raises:
        TLError subclasses for bad data or settings; the caller records them as a failed run.
    """
    t_start = time.time()
    d = distributed.current()
    cfg = TrainConfig.load(run.config_file) if cfg is None else cfg
    if d.main:
        run.stop_file.unlink(missing_ok=True)
        run.write_status(state="running", stage="preparing", started=t_start, progress=0.0,
                         device=distributed.describe_device(d.device), processes=d.world)
        try:
            classes, split = _prepare_run(run, cfg, resume)
        except TLError as exc:
            d.broadcast(str(exc))  # the other ranks fail with the same message instead of waiting
            raise
        d.broadcast(None)
    else:
        error = d.broadcast(None)
        if error:
            raise DatasetError(error)
        classes, split = _prepare_run(run, cfg, resume=True)  # exactly the split rank 0 wrote
    spec = get_backbone(cfg.backbone)
    torch.manual_seed(cfg.seed)
    model = build_model(spec, len(classes), cfg.head_hidden, cfg.dropout, weights=cfg.weights).to(d.device)
    model = distributed.to_channels_last(model, spec.channels_last)
    plan = plan_run(cfg, model.group_param_counts(), len(split["train"]))
    cfg = resolved_config(cfg, plan)
    if d.main:
        cfg.save(run.config_file)
    log.info("plan: %s", plan)
    numerics = d.broadcast(_run_numerics(run, spec, d.device, resume) if d.main else None)
    log.info("numerics: %s", numerics)
    meta = {"labels": classes, "backbone": spec.name, "head_hidden": cfg.head_hidden, "dropout": cfg.dropout,
            "frozen_groups": plan.frozen_groups, "numerics": numerics.to_dict()}
    last = None
    if resume:
        last = _load_resume_state(run) if d.main else None
        d.barrier()
        last = last if d.main else _load_resume_state(run, trim=False)
    saver = ckpt.Checkpointer(run, meta, best=tuple(last["best"]) if last else None)
    parts = RunParts(run, cfg, plan, spec, model, split, saver, last, d, numerics)
    stages = Stages(parts, t_start)
    try:
        reason = stages.run_all()
    except CancelTraining as exc:  # stopped while computing features
        reason = exc.reason
    if d.enabled and d.main:
        write_json_atomic(run.path / "distributed.json", {
            "processes": d.world, "backend": d.backend, "device": distributed.describe_device(d.device),
            "first_epoch_samples": stages.shards})
    summary = _finish(parts, classes, stages, reason, t_start) if d.main else None
    return d.broadcast(summary)


def _run_numerics(run: RunDir, spec, device, resume: bool) -> Numerics:
    """A resumed run keeps the numerics it started with (its cache and checkpoints were made in
    them); a new one takes this machine's measured choice. Recorded in ``numerics.json``."""
    file = run.path / NUMERICS_FILE
    if resume and file.is_file():  # as they can run here (OpenVINO gone: PyTorch, features computed again)
        numerics = for_device(Numerics.from_dict(read_json(file)), device)
        write_json_atomic(file, numerics.to_dict())
        return numerics
    numerics = choose(spec, device)
    write_json_atomic(file, numerics.to_dict())
    return numerics


def _finish(parts: RunParts, classes: list[str], stages: Stages, reason: str, t_start: float) -> dict:
    """Evaluate the best checkpoint on val and test, write eval.json and the final status."""
    run, cfg, plan, spec, model, split = parts.run, parts.cfg, parts.plan, parts.spec, parts.model, parts.split
    best = ckpt.load_checkpoint(run.checkpoint("best")) if run.checkpoint("best").is_file() else None
    results, scored = {}, {}
    if best is not None:
        model.load_state_dict(best["model"])
        for part in ("val", "test"):
            items = split[part]
            if not items:
                continue
            probs = stages.probs(part, best["stage"])
            results[part] = compute_metrics(items, probs, classes)
            scored[part] = ([it.label for it in items], probs)
        write_json_atomic(run.eval_file, {"best_stage": best["stage"], "best_epoch": best["epoch"], **results})
        if len(scored.get("val", ([],))[0]) >= 2:
            write_json_atomic(run.path / CALIBRATION_FILE, calibrate(scored))
    state = "stopped" if reason == "stopped" else "succeeded"
    summary = {
        "run_dir": str(run.path), "backbone": spec.name, "scenario": cfg.scenario,
        "frozen_fraction": plan.frozen_share, "frozen_groups": plan.frozen_groups,
        "total_groups": plan.total_groups, "trainable_params": model.trainable_params(),
        "val_accuracy": results.get("val", {}).get("accuracy"),
        "test_accuracy": results.get("test", {}).get("accuracy"), "test_images": results.get("test", {}).get("n"),
        "epochs_run": stages.epochs_run, "seconds": round(time.time() - t_start, 2),
        "feature_cache": stages.cache_status, "prefix_cache": stages.prefix_status, "stop_reason": reason,
        "precision": parts.numerics.precision, "train_precision": parts.numerics.train_precision,
        "engine": parts.numerics.engine,
    }
    run.write_status(state=state, stage="done", progress=1.0, finished=time.time(), result=summary, eta_seconds=0)
    return summary
