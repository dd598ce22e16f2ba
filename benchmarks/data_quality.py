"""Data-quality benchmarks (issue 17): suspect labels, "not sure" calibration.

    nice .venv/bin/python benchmarks/data_quality.py [--only signs|cats] [--retrain [--seeds N]] [--out FILE]

For each shared data set (../shared/datasets, skipped when absent): a copy with 5% of the labels
flipped by a seeded script; the seconds ``find_suspects`` takes (features cached / not) and how
many flips are among the N worst (N = number flipped); a head-only run (scenario 1) on the clean
data with its ECE before/after temperature scaling and the "not sure" share on its own test images;
for cats-vs-dogs also the "not sure" share on sign-digit photos (a class it never saw).
``--retrain`` instead trains scenario 1 on the clean images, on the flipped copy, and on that copy
with every flagged suspect excluded, all tested on the same held-out images. Every number is
measured now; nothing is asserted. Writes benchmarks/data_quality.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "datasets"
SETS = {"signs": SHARED / "sign-language-digits", "cats": SHARED / "cats-vs-dogs"}


def flip_labels(root: Path, share: float = 0.05, seed: int = 0) -> set[str]:
    """Move ``share`` of the images (every class folder under ``root``) to a wrong class folder."""
    rng = random.Random(seed)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    files = sorted(f for c in classes for f in (root / c).iterdir() if f.is_file())
    flipped = set()
    for f in rng.sample(files, round(share * len(files))):
        wrong = rng.choice([c for c in classes if c != f.parent.name])
        os.rename(f, root / wrong / f.name)
        flipped.add(f"{wrong}/{f.name}")
    return flipped


def suspects_bench(source: Path, work: Path, cache: Path) -> dict:
    from tl_core.suspects import find_suspects

    noisy = work / "noisy"
    shutil.copytree(source, noisy, ignore=shutil.ignore_patterns("*.md", "LICENSE"))
    flipped = flip_labels(noisy)
    first = find_suspects(noisy, cache_dir=str(cache), top=len(flipped))
    again = find_suspects(noisy, cache_dir=str(cache), top=len(flipped))
    hits = sum(s["path"] in flipped for s in again["suspects"])
    return {"images": again["images"], "flipped": len(flipped), "flips_in_worst_n": hits,
            "precision_at_n": round(hits / len(flipped), 3), "seconds_first": first["seconds"],
            "seconds_cached": again["seconds"], "flagged": again["flagged"]}


def held_out(source: Path, work: Path, share: float = 0.2, seed: int = 1) -> tuple[Path, Path]:
    """A fixed test folder (``share`` of each class, seeded) and the rest as the training folder, so
    the clean, noisy and cleaned runs are all tested on the very same images."""
    rng = random.Random(seed)
    train, test = work / "train_part", work / "test_part"
    for c in sorted(p for p in source.iterdir() if p.is_dir()):
        files = sorted(f for f in c.iterdir() if f.is_file())
        picked = set(rng.sample(files, round(share * len(files))))
        for f in files:
            dest = (test if f in picked else train) / c.name
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest / f.name)
    return train, test


def head_only_accuracy(data: Path, test: Path, work: Path, cache: Path, seed: int = 0) -> float:
    from tl_core.config import TrainConfig
    from tl_core.runs import RunDir
    from tl_core.train import train_run

    run = RunDir.create(work / "runs")
    cfg = TrainConfig(data=str(data), test_data=str(test), scenario=1, cache_dir=str(cache), seed=seed)
    cfg.save(run.config_file)
    return train_run(run, cfg)["test_accuracy"]


def retrain_bench(train: Path, test: Path, work: Path, cache: Path, seeds: int = 1) -> dict:
    """Scenario 1 on the clean training images, on a copy with 5% of the labels flipped, and on that
    copy with every flagged suspect excluded (what a user does with the gallery's Exclude), all
    tested on the same held-out images; each arm over ``seeds`` run seeds (each its own
    train/validation split and head initialisation; the features are extracted once per arm). The gap
    to the clean arm is reported paired by seed, with its standard error."""
    from tl_core.curation import set_excluded
    from tl_core.suspects import find_suspects

    noisy = work / "noisy_retrain"
    shutil.copytree(train, noisy)
    flipped = flip_labels(noisy)
    arms = {"clean": [head_only_accuracy(train, test, work, cache, s) for s in range(seeds)],
            "noisy": [head_only_accuracy(noisy, test, work, cache, s) for s in range(seeds)]}
    flagged = [s["path"] for s in find_suspects(noisy, cache_dir=str(cache))["suspects"]]
    set_excluded(noisy, flagged)
    arms["cleaned"] = [head_only_accuracy(noisy, test, work, cache, s) for s in range(seeds)]
    mean = {k: statistics.fmean(v) for k, v in arms.items()}
    # Paired by seed: a seed puts nearly every image in the same part in every arm (a split follows a hash
    # of each image's path; a flipped image moves class, which can shift one image per class at a cut-off),
    # and starts the head alike.
    gaps = [100 * (c - d) for c, d in zip(arms["clean"], arms["cleaned"])]
    paired = {"gap_per_seed_points": [round(g, 2) for g in gaps],
              "gap_se_points": round(statistics.stdev(gaps) / len(gaps) ** 0.5, 2),
              "gap_se_unpaired_points": round(100 * ((statistics.variance(arms["clean"]) + statistics.variance(
                  arms["cleaned"])) / len(gaps)) ** 0.5, 2)} if seeds > 1 else {}
    return {"test_images": sum(1 for f in test.rglob("*") if f.is_file()), "flipped": len(flipped),
            "excluded": len(flagged), "flips_excluded": len(set(flagged) & flipped), "seeds": seeds,
            **{f"{k}_accuracy": round(m, 4) for k, m in mean.items()},
            **{f"{k}_accuracy_per_seed": v for k, v in arms.items()},
            **({f"{k}_accuracy_sd": round(statistics.stdev(v), 4) for k, v in arms.items()} if seeds > 1 else {}),
            "gap_to_clean_points": round(100 * (mean["clean"] - mean["cleaned"]), 2), **paired}


def calibration_bench(data: Path, work: Path, cache: Path, unseen: Path | None) -> tuple[dict, Path]:
    from tl_core.backbones import get_backbone
    from tl_core.calibration import apply_temperature, load_calibration
    from tl_core.evaluate import predict_probs
    from tl_core.config import TrainConfig
    from tl_core.data import scan_folder, validate
    from tl_core.predict import Predictor
    from tl_core.runs import RunDir
    from tl_core.train import train_run

    run = RunDir.create(work / "runs")
    cfg = TrainConfig(data=str(data), scenario=1, cache_dir=str(cache))
    cfg.save(run.config_file)
    t0 = time.time()
    summary = train_run(run, cfg)
    cal = load_calibration(run.path)
    out = {"train_seconds": round(time.time() - t0, 1), "test_accuracy": summary["test_accuracy"],
           "temperature": cal["temperature"], "threshold": cal["threshold"],
           **{f"{part}_{k}": v[k] for part, v in cal["parts"].items() for k in ("n", "ece_before", "ece_after",
                                                                                  "not_sure_share")}}
    if unseen is not None:
        items = validate(scan_folder(unseen))[1].items
        predictor = Predictor.from_run(run.path)
        spec = get_backbone(cfg.backbone)
        probs = apply_temperature(predict_probs(predictor.model, items, spec), cal["temperature"])  # in batches
        out["unseen_images"] = len(items)
        out["unseen_not_sure_share"] = round(float((probs.max(1).values < cal["threshold"]).float().mean()), 3)
    return out, run.path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=list(SETS))
    ap.add_argument("--out", help="default benchmarks/data_quality.json (data_quality_retrain.json with --retrain)")
    ap.add_argument("--skip-suspects", action="store_true", help="only the calibration part")
    ap.add_argument("--retrain", action="store_true", help="only: clean vs noisy vs suspects excluded, retrained")
    ap.add_argument("--seeds", type=int, default=1, help="with --retrain: run seeds per arm (reported: mean, spread)")
    args = ap.parse_args()
    if args.seeds < 1:
        ap.error("--seeds must be at least 1")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work, cache = Path(tmp), Path(tmp) / "cache"
        for name, source in SETS.items():
            if (args.only and name != args.only) or not source.is_dir():
                continue
            train = source / "train" if (source / "train").is_dir() else source
            (work / name).mkdir()
            if args.retrain:
                test = source / "validation" if (source / "validation").is_dir() else None
                part, test = (train, test) if test else held_out(source, work / name)
                results[name] = {"retrain": retrain_bench(part, test, work / name, cache, args.seeds)}
                print(name, "retrain", results[name]["retrain"], flush=True)
                continue
            r = {} if args.skip_suspects else {"suspects": suspects_bench(train, work / name, cache)}
            print(name, "suspects", r.get("suspects"), flush=True)
            unseen = SETS["signs"] if name == "cats" and SETS["signs"].is_dir() else None
            r["calibration"] = calibration_bench(source, work / name, cache, unseen)[0]
            print(name, "calibration", r["calibration"], flush=True)
            results[name] = r
    out = args.out or ROOT / "benchmarks" / ("data_quality_retrain.json" if args.retrain else "data_quality.json")
    Path(out).write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
