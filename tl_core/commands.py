"""The CLI's commands. Each returns ``(json_result, human_text)``; errors are raised as ``TLError``."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from . import settings
from .errors import ConfigError, TLError
from .i18n import _


def cmd_worker(args):
    from .warm import serve

    return {"exit": serve()}, ""


def cmd_numerics(args):
    from .backbones import get_backbone
    from .numerics import choose, measure

    spec = get_backbone(args.backbone)
    result = measure(spec)
    chosen = choose(spec)
    rows = [_("{precision}: {fwd} images/s forward, {step} images/s training, features within {err:.1%} of fp32",
              precision=p, fwd=r["forward_ips"], step=r["step_ips"], err=r["feature_error"]) if "step_ips" in r
            else _("{precision}: {fwd} images/s forward (frozen part only), features within {err:.1%} of fp32",
                   precision=p, fwd=r["forward_ips"], err=r["feature_error"])
            for p, r in result["precisions"].items()]
    return {**result, "chosen": chosen.to_dict()}, "\n".join(
        rows + [_("new runs of {backbone} compute in {precision} ({reason})", backbone=spec.name,
                  precision=chosen.label, reason=chosen.reason)])


def cmd_advise(args):
    from .backbones import get_backbone, group_table
    from .config import TrainConfig
    from .freezing import scenario_for
    from .recipe import plan_run

    if args.data:
        from .measure import explain_measurement, measure

        answered = (args.size, args.similarity) if args.size and args.similarity else None
        if args.no_race:
            m = measure(args.data, args.backbone)
            return m, explain_measurement(m, answered).replace("**", "").replace("*", "")
        from .advice import advise_measured, explain_race

        from .runs import write_json_atomic

        if not args.job_dir:
            m = advise_measured(args.data, args.backbone, margin=args.margin)
        else:  # a job the app started: it trains, so it takes a slot of the training queue like a run
            from .launcher import ADVICE_FILE
            from .runs import RunDir, lifecycle

            job = RunDir(args.job_dir)
            if not job.status_file.is_file():
                raise ConfigError(_("{path} is not an advice job folder (no status.json)", path=args.job_dir))
            with lifecycle(job, log_file=False):
                slot = _take_slot(job)
                try:
                    m = advise_measured(args.data, args.backbone, margin=args.margin)
                finally:
                    slot.close()
                write_json_atomic(job.path / ADVICE_FILE, m)
                job.write_status(state="succeeded", finished=time.time())
        if args.out:
            write_json_atomic(args.out, m)
        text = explain_measurement(m, answered) + "\n\n" + explain_race(m)
        return m, text.replace("**", "").replace("*", "")
    if not (args.size and args.similarity):
        raise ConfigError(_("advise needs --size and --similarity, or --data DIR to measure them"))
    spec, sc = get_backbone(args.backbone), scenario_for(args.size, args.similarity)
    plan = plan_run(TrainConfig(data="", backbone=spec.name, scenario=sc.number), group_table(spec.name)[1], 0)
    advice = {"scenario": sc.number, "size": sc.size, "similarity": sc.similarity, "title": sc.title,
              "reason": sc.reason, "target_frozen_fraction": sc.frozen_target, "backbone": spec.name,
              **plan.to_dict(), "frozen_fraction": plan.frozen_share}
    text = "\n".join([
        _("Scenario {n}: {title}", n=sc.number, title=_(sc.title)),
        _("{name}: freeze {k} of {total} layer groups ({share:.0%} of parameters)", name=spec.name,
          k=plan.frozen_groups, total=plan.total_groups, share=plan.frozen_share),
        "", _(sc.reason)])
    return advice, text


def cmd_train(args):
    from . import distributed

    d = distributed.init_from_env()  # a no-op unless started by torchrun
    try:
        result = _train(args, d)
    except BaseException:
        distributed.shutdown(clean=False)  # no goodbye barrier: the other ranks may be stuck elsewhere
        raise
    distributed.shutdown()
    return result


def _train(args, d):
    from .backbones import get_backbone
    from .cli import config_from_args
    from .runs import RunDir, lifecycle, pid_alive, run_state
    from .train import train_run

    resume = bool(args.resume)
    run = cfg = None
    if d.main:
        try:
            if resume or args.run_dir:  # (a resumed torchrun job must use the same number of processes)
                run = RunDir.open(args.resume or args.run_dir)
                pid = run.status().get("pid")
                if pid and pid != os.getpid() and pid_alive(pid):
                    raise ConfigError(_("{path} is already {state} in process {pid}; stop it first",
                                        path=run.path, state=_(run_state(run)), pid=pid))
            else:
                cfg = config_from_args(args)
                get_backbone(cfg.backbone)  # unknown names fail before a run directory is made
                run = RunDir.create(args.runs_dir)
                cfg.save(run.config_file)
        except TLError as exc:
            d.broadcast({"error": str(exc)})  # under torchrun the other ranks fail with it
            raise
    # Under torchrun, rank 0 made (or checked) the run directory; the others use it.
    got = d.broadcast({"path": str(run.path)} if run else None)
    if not d.main:
        if "error" in got:
            raise ConfigError(got["error"])
        # The other ranks of a torchrun job write nothing but train with rank 0.
        run = RunDir.open(got["path"])
        signal.signal(signal.SIGTERM, lambda *_signal: run.request_stop())
        return train_run(run, None, resume=resume), ""
    with lifecycle(run):
        # A torchrun job is not queued: its other ranks are already running and waiting for rank 0.
        slot = _take_slot(run, queue=not d.enabled)
        try:
            result = train_run(run, cfg, resume=resume)
        finally:
            if slot is not None:
                slot.close()
    text = _("run {run}: {reason} after {n} epochs in {seconds:.0f} s; val accuracy {val}, test accuracy {test}",
             run=result["run_dir"], reason=result["stop_reason"], n=result["epochs_run"], seconds=result["seconds"],
             val=_pct(result["val_accuracy"]), test=_pct(result["test_accuracy"]))
    return result, text


def _take_slot(run, queue: bool = True):
    """Mark ``run`` queued, wait (unless ``queue`` is False) for one of the ``TL_MAX_CONCURRENT``
    training slots of its runs folder, first come first served, then mark it running. Returns the
    lock file holding the slot (close it to free the slot), or None when not queued."""
    from .runs import wait_for_slot

    run.write_status(state="queued", pid=os.getpid(), queued_at=run.status().get("queued_at", time.time()))
    slot = (wait_for_slot(run, settings.max_concurrent(),
                          on_wait=lambda: _leave_queue_if_stopped(run)) if queue else None)
    run.write_status(state="running", pid=os.getpid(), started=time.time())
    return slot


def _leave_queue_if_stopped(run) -> None:
    if run.stop_requested():
        run.write_status(state="stopped", finished=time.time())
        raise SystemExit(0)


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def cmd_predict(args):

    from .predict import Predictor

    if args.imagenet:
        predictor, images = Predictor.imagenet(args.backbone, args.weights), args.target
    else:
        if len(args.target) < 2:
            raise ConfigError(_("predict needs RUN_DIR (or an exported BUNDLE folder) and at least one IMAGE (or "
                                "--imagenet IMAGE...)"))
        predictor, images = _open_model(args.target[0], args.trust), args.target[1:]
    missing = [p for p in images if not Path(p).is_file()]
    if missing:
        raise ConfigError(_("image file(s) not found: {files}", files=', '.join(missing)))
    from .imaging import ImageReadError

    out = []
    for path in images:
        try:
            top = predictor.predict([path], args.top_k)[0]
        except ImageReadError as exc:
            raise ConfigError(_("cannot read {path}: {exc}", path=path, exc=exc)) from None
        out.append({"image": path, "top": top})
    text = "\n".join(f"{o['image']}: " + ", ".join(f"{t['label']} {t['prob']:.1%}" for t in o["top"]) for o in out)
    return out, text


def _open_model(target: str, trust: bool):
    """A run directory, a bundle folder, or a bundle zip (unpacked into a temporary folder)."""
    from .serving import open_predictor

    if not target.lower().endswith(".zip"):
        return open_predictor(target, trust)
    if not os.path.isfile(target):
        raise ConfigError(_("bundle zip {path} not found", path=target))
    import tempfile

    from .sharing import open_zip_path

    tmp = tempfile.mkdtemp(prefix="tl-bundle-")  # removed at exit: the session has read the model by then
    import atexit
    import shutil

    atexit.register(shutil.rmtree, tmp, True)
    return open_predictor(open_zip_path(target, tmp), trust)


def cmd_lab(args):
    from .lab import run_lab, summarize_lab
    from .runs import RunDir, lifecycle

    lab = RunDir(args.lab_dir) if args.lab_dir else RunDir.create(args.runs_dir, prefix="lab")
    lab.path.mkdir(parents=True, exist_ok=True)
    current = {}

    def forward_stop() -> None:  # SIGTERM / the UI's Stop: stop the lab and the scenario in progress
        lab.request_stop()
        if "run" in current:
            current["run"].request_stop()

    with lifecycle(lab, on_term=forward_stop):
        slot = _take_slot(lab)  # the lab trains like a run: it waits for a training slot and holds it
        try:
            result = run_lab(args.data, args.test_data, args.runs_dir, backbone=args.backbone, epochs=args.epochs,
                             lab=lab, cache_dir=args.cache_dir, on_run=lambda run: current.update(run=run),
                             repeats=args.repeats)
        finally:
            slot.close()
    lab.write_status(state="stopped" if lab.stop_requested() else "succeeded", finished=time.time())
    rows = "\n".join("  " + _("scenario {n}: test {acc}, {seconds:.0f} s, {params:,} trainable parameters",
                                n=s["scenario"], acc=_pct(s["test_accuracy"]), seconds=s["seconds"],
                                params=s["trainable_params"]) for s in result["scenarios"])
    result["summary"] = summarize_lab(result)
    return result, f"{rows}\n{result['summary']}"


def cmd_export(args):

    from .export import describe, export_run

    out = args.out or str(Path(args.run_dir) / f"export-{args.format}")
    info = export_run(args.run_dir, args.format, out, args.which, args.quantize, args.accept_loss)
    return {**info, "out": str(Path(out).resolve())}, f"{out}: {describe(info)}"


def cmd_evaluate(args):
    from .evaluate import evaluate_run

    m = evaluate_run(args.run_dir, args.data)
    lines = [_("accuracy {acc} on {n} images, macro F1 {f1:.3f}", acc=_pct(m["accuracy"]), n=m["n"], f1=m["macro_f1"])]
    lines += [f"  {c['class']:>20}: precision {c['precision']:.3f} recall {c['recall']:.3f} f1 {c['f1']:.3f} "
              f"(n={c['support']})" for c in m["per_class"]]
    return m, "\n".join(lines)


def cmd_list_backbones(args):
    from .backbones import get_backbone, list_backbones

    rows, labels = [], []
    for name in list_backbones(args.pattern):
        s = get_backbone(name)
        check = s.check_weights()  # the same check, and words, as the Model page's
        rows.append({"name": name, "params": s.params, "feature_dim": s.feature_dim, "input_size": s.input_size,
                     "gflops": s.gflops, "weights": s.weights_id, "offline": check.state == "ready",
                     "weights_state": check.state, "weights_problem": check.detail,
                     "license": s.license, "description": s.description})
        labels.append(check.label)
    text = "\n".join(f"{r['name']:<20} {r['params'] / 1e6:6.1f}M params  {r['input_size']}px  {label}"
                     for r, label in zip(rows, labels))
    return rows, text


def cmd_status(args):
    from .runs import RunDir, run_state

    run = RunDir.open(args.run_dir)
    status = {**run.status(), "state": run_state(run)}
    return status, f"{run.id}: {_(status['state'])}"
