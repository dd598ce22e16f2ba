"""The measured advice: the textbook's answer (size + similarity) beside what a short race of the
scenarios measured on the user's own images, with intervals, time, and a cheaper pick.

``advise_measured`` runs ``measure.measure`` and ``race.run_race`` and turns them into one plain
dict (the JSON of ``advise --data DIR``); ``verdict_sentence`` and ``cheaper_sentence`` say it in
words. Deciding is pure and torch-free here (``pick``, ``cheaper_pick``), so it is tested on
planted numbers.
"""

from __future__ import annotations

import time
from pathlib import Path

from .freezing import SCENARIOS
from .i18n import N_, _
from .stats import paired, wilson

DEFAULT_MARGIN = 1.0  # accuracy points a costlier scenario must win by before it is worth its time
WHAT = {1: N_("the frozen network with a new head"), 2: N_("freezing about 70% of the network"),
        3: N_("freezing only the early layers"), 4: N_("fine-tuning everything")}


def pick(candidates: list[dict]) -> dict:
    """The candidate with the best holdout accuracy; among equals, the cheapest (estimated time)."""
    return min(candidates, key=lambda c: (-c["accuracy"], c["estimated_seconds"]))


def cheaper_pick(candidates: list[dict], best: dict, margin: float = DEFAULT_MARGIN) -> dict | None:
    """The cheapest candidate costing less than ``best`` whose accuracy is below it by less than
    ``margin`` points or by no measurable difference on the same holdout images (paired test);
    None when there is none."""
    cheaper = []
    for c in candidates:
        if c["estimated_seconds"] >= best["estimated_seconds"]:
            continue
        gap = 100 * (best["accuracy"] - c["accuracy"])
        cmp = paired(best["wrong"], c["wrong"])
        if gap < margin or not cmp["measurable"]:
            cheaper.append({**c, "gap_points": round(gap, 1), "p": round(cmp["p"], 4),
                            "reason": "margin" if gap < margin else "noise"})
    return min(cheaper, key=lambda c: c["estimated_seconds"], default=None)


def _ratio(a: float, b: float) -> str:
    r = a / max(b, 1e-9)
    return _("at {r:.1f}x the time", r=r) if r >= 1 else _("in {r:.0%} of the time", r=r)


def final_pick(candidates: list[dict], predicted: list[dict], margin: float) -> tuple[dict, dict | None]:
    """(the pick, the cheaper pick or None): the best measured candidate, unless a predicted
    (untrained) scenario is expected to beat it by ``margin`` points; then that one, with the best
    measured one as the cheaper pick, since its win is a prediction."""
    best = pick(candidates)
    ahead = [p for p in predicted if 100 * (p["accuracy"] - best["accuracy"]) >= margin]
    if ahead:
        top = max(ahead, key=lambda p: p["accuracy"])
        gap = round(100 * (top["accuracy"] - best["accuracy"]), 1)
        return top, {**best, "gap_points": gap, "p": None, "reason": "predicted"}
    return best, cheaper_pick(candidates, best, margin)


def verdict_sentence(m: dict, candidates: list[dict], best: dict) -> str:
    """One sentence: the race agrees with the textbook, or where and by how much it differs.
    ``candidates`` holds the measured and the predicted scenarios; ``best`` is the pick."""
    textbook = m["scenario"]
    words = dict(t=textbook, size=_(m["size"]), similarity=_(m["similarity"]), p=best["scenario"],
                 what=_(WHAT[best["scenario"]]), acc=best["accuracy"], n=best.get("n", 0))
    predicted = best.get("predicted", False)
    if best["scenario"] == textbook:
        if predicted:
            return _("The textbook says {t} for {size} + {similarity}, and the race on your images agrees: the trend "
                     "of the measured scenarios predicts scenario {p} best (about {acc:.1%}).", **words)
        return _("The textbook says {t} for {size} + {similarity}, and the race on your images agrees: scenario {p} "
                 "measured best ({acc:.1%} on {n} validation images).", **words)
    other = next((c for c in candidates if c["scenario"] == textbook), None)
    if other is None:
        return _("The textbook says {t} for {size} + {similarity}; on your images {what} measured {acc:.1%} on {n} "
                 "validation images, and scenario {t} could not be expected to beat it by your margin, so it was not "
                 "trained.", **words)
    gap = 100 * (best["accuracy"] - other["accuracy"])
    time_words = _ratio(best["estimated_seconds"], other["estimated_seconds"])
    if predicted:
        return _("The textbook says {t} for {size} + {similarity}; on your images the trend of the measured scenarios "
                 "predicts {what} {gap:.1f} points better, {time}.", gap=gap, time=time_words, **words)
    if gap <= 0:
        return _("The textbook says {t} for {size} + {similarity}; on your images {what} measured as well, "
                 "{time}.", time=time_words, **words)
    return _("The textbook says {t} for {size} + {similarity}; on your images {what} measured {gap:.1f} points "
             "better, {time}.", gap=gap, time=time_words, **words)


def cheaper_sentence(best: dict, cheap: dict | None, margin: float) -> str:
    """The cheaper pick in words, or an empty string."""
    if cheap is None:
        return ""
    words = dict(c=cheap["scenario"], acc=cheap["accuracy"], gap=cheap["gap_points"], p=best["scenario"],
                 time=_ratio(cheap["estimated_seconds"], best["estimated_seconds"]), margin=margin, pv=cheap["p"])
    if cheap["reason"] == "predicted":
        return _("Cheaper pick: scenario {c} measured {acc:.1%}; scenario {p} is predicted {gap:.1f} points better "
                 "but was not trained in the race, and scenario {c} takes {time}.", **words)
    if cheap["reason"] == "margin":
        return _("Cheaper pick: scenario {c} reached {acc:.1%}, {gap:.1f} points below scenario {p} (less than your "
                 "margin of {margin:g}), {time}.", **words)
    return _("Cheaper pick: scenario {c} reached {acc:.1%}, {gap:.1f} points below scenario {p}, which the validation "
             "images cannot tell from chance (paired test, p = {pv:.2f}), {time}.", **words)


def estimated_seconds(param_counts, flops, n_images: int, images_per_second: float) -> dict[int, float]:
    """Each scenario's expected time for a default run on the whole data set, from its planned work
    (``progress.run_budget``, in image forward passes) at the measured speed."""
    from .config import TrainConfig
    from .progress import run_budget
    from .recipe import plan_run, train_images

    out = {}
    for k in sorted(SCENARIOS):
        cfg = TrainConfig(data="", scenario=k)
        n_train = train_images(n_images, cfg)
        plan = plan_run(cfg, param_counts, n_train)
        work = run_budget(plan, n_train, round(n_images * cfg.val_fraction), n_images, flops).total
        out[k] = round(work / max(images_per_second, 1e-6), 1)
    return out


def lab_seconds_estimate(param_counts, flops, n_images: int, images_per_second: float) -> float:
    """The full lab's expected time on the same data (its four runs, as ``lab.lab_weights`` plans
    them, in image forward passes) at the measured speed."""
    from .lab import lab_configs, lab_weights

    weights = lab_weights(lab_configs("", epochs=5), n_images, param_counts, flops)
    return round(sum(weights.values()) / max(images_per_second, 1e-6), 1)


def advise_measured(data: str, backbone: str | None = None, margin: float = DEFAULT_MARGIN, race_settings=None) -> dict:
    """The measurement (size, similarity, textbook scenario, evidence) plus the race: every raced
    scenario's holdout accuracy with its 95% interval and time, the pick, a cheaper pick, the verdict."""
    from .backbones import get_backbone, group_flops
    from .data import scan_folder, validate
    from .measure import measure
    from .model import TransferModel
    from .race import RaceSettings, run_race

    t0, cpu0 = time.perf_counter(), time.process_time()
    m = measure(data, backbone)
    spec = get_backbone(backbone)
    scan = validate(scan_folder(data))[1]
    model = TransferModel(spec.groups(spec.load_pretrained()), spec.feature_dim, 2)
    race = run_race(model, spec, data, len(scan.classes), race_settings or RaceSettings(), margin)
    counts, flops = model.group_param_counts(), group_flops(model.body, spec.input_size)
    est = estimated_seconds(counts, flops, len(scan.items), race["images_per_second"])
    cands = [{**c, "interval": [round(x, 4) for x in wilson(c["correct"], c["n"])],
              "estimated_seconds": est[c["scenario"]]} for c in race["candidates"]]
    preds = [{**p, "predicted": True, "estimated_seconds": est[p["scenario"]]} for p in race["predicted"]]
    best, cheap = final_pick(cands, preds, margin)
    seconds, cpu = round(time.perf_counter() - t0, 1), round(time.process_time() - cpu0, 1)
    lab_est = lab_seconds_estimate(counts, flops, len(scan.items), race["images_per_second"])
    return {**m, "data": str(Path(data).resolve()), "textbook": m["scenario"], "pick": best["scenario"],
            "pick_is_prediction": bool(best.get("predicted")),
            "cheaper": cheap["scenario"] if cheap else None, "margin_points": margin,
            "verdict": verdict_sentence(m, cands + preds, best), "cheaper_text": cheaper_sentence(best, cheap, margin),
            "race": {**{k: v for k, v in race.items() if k not in ("candidates", "predicted")},
                     "candidates": [{k: v for k, v in c.items() if k != "wrong"} for c in cands],
                     "predicted": preds},
            "cost": {"seconds": seconds, "cpu_seconds": cpu, "lab_estimate_seconds": lab_est,
                     "share_of_lab": round(seconds / lab_est, 3)}}

def race_rows(advice: dict) -> list[dict]:
    """One row per scenario for a table: raced ones with accuracy, interval and times; the rest
    marked as not raced."""
    raced = {c["scenario"]: c for c in advice["race"]["candidates"]}
    predicted = {p["scenario"]: p for p in advice["race"].get("predicted", [])}
    rows = []
    for k in sorted(SCENARIOS):
        c = raced.get(k)
        guess = predicted.get(k)
        mark = " ".join(x for x in (_("textbook") if k == advice["textbook"] else "",
                                    _("pick") if k == advice["pick"] else "",
                                    _("cheaper") if k == advice.get("cheaper") else "") if x)
        accuracy = (f"{c['accuracy']:.1%}" if c else _("~{acc:.1%} (predicted)", acc=guess["accuracy"]) if guess
                    else _("not raced"))
        rows.append({_("scenario"): k, _("validation accuracy"): accuracy,
                     _("95% interval"): f"{c['interval'][0]:.0%}-{c['interval'][1]:.0%}" if c else "",
                     _("race seconds"): c["seconds"] if c else None,
                     _("estimated full run (s)"): (c or guess or {}).get("estimated_seconds"), "": mark})
    return rows


def explain_race(advice: dict) -> str:
    """The race in words: each scenario's measured accuracy and time, the verdict, the cheaper pick, the cost."""
    r = advice["race"]
    lines = [_("Race on your images ({train} training, {holdout} validation images; {epochs} fine-tuning epochs "
               "each):", train=r["sample"]["train"], holdout=r["sample"]["holdout"], epochs=r["sample"]["epochs"])]
    for c in r["candidates"]:
        lines.append(_("- scenario {k}: {acc:.1%} (95% interval {lo:.0%}-{hi:.0%}) on {n} validation images; raced in "
                       "{s:.0f} s, a full run would take about {est:.0f} s", k=c["scenario"], acc=c["accuracy"],
                       lo=c["interval"][0], hi=c["interval"][1], n=c["n"], s=c["seconds"], est=c["estimated_seconds"]))
    for p in r.get("predicted", []):
        lines.append(_("- scenario {k}: about {acc:.1%}, predicted from the measured ones (not trained); a full run "
                       "would take about {est:.0f} s", k=p["scenario"], acc=p["accuracy"], est=p["estimated_seconds"]))
    if r["stopped"]:
        lines.append(_("- not raced (the best so far left less than your margin to win): {stopped}",
                       stopped=", ".join(str(k) for k in r["stopped"])))
    lines += ["", _("**Measured pick: scenario {k}.**", k=advice["pick"]) + " " + advice["verdict"]]
    if advice.get("cheaper_text"):
        lines.append(advice["cheaper_text"])
    cost = advice["cost"]
    lines.append(_("The advice took {s:.0f} s, about {share:.0%} of a full lab on these images (estimated {lab:.0f} s).",
                   s=cost["seconds"], share=cost["share_of_lab"], lab=cost["lab_estimate_seconds"]))
    return "\n".join(lines)


def advice_job(runs_dir: str | Path, data: str) -> tuple[str, dict | Path | None]:
    """The newest advice job for ``data`` in ``runs_dir`` (``launcher.launch_advice``):
    ("done", advice) | ("running", folder) | ("failed", folder) | ("none", None)."""
    from .launcher import ADVICE_FILE
    from .runs import pid_alive, read_json

    root, want = Path(runs_dir), str(Path(data).resolve())
    jobs = sorted(root.glob("*-advice-*"), reverse=True) if root.is_dir() else []
    for job in jobs:
        advice = read_json(job / ADVICE_FILE, None)
        if advice and advice.get("data") == want:
            return "done", advice
        status = read_json(job / "status.json", {}) or {}
        if advice is None and status.get("data") == want:
            return ("running" if pid_alive(status.get("pid")) else "failed"), job
    return "none", None
