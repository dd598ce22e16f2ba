"""Numerics and the warm path, side by side in one run (issue 15).

    .venv/bin/python benchmarks/numerics_bench.py            # full
    .venv/bin/python benchmarks/numerics_bench.py --quick    # reduced

1. Extraction images/s of the frozen backbone per engine and precision (PyTorch fp32; bf16 where
   this CPU has it natively; OpenVINO in the same precisions where installed), batches interleaved, medians; the share of the physical peak; and the test accuracy of
   the same head trained on each precision's features (and of the bf16 head fed fp32 features, which
   is what an exported bundle computes), on cats-vs-dogs and sign-language digits.
2. Fine-tune epoch time fp32 vs bf16 for scenarios 3 and 4 (whole runs, median epoch).
3. Click to trained model and click to first prediction for 90 photos (3 classes): a warm worker
   against a cold process, alternated.
4. Head-only run vs the tutorial loop vs one extraction pass, for N = 90, 250, 2000: a whole cold
   ``python -m tl_core train`` process, and the same run through ``launch()`` (what the Train button
   calls) with a warm worker.
The click in the browser itself: ``benchmarks/click_browser.py``.
Writes benchmarks/numerics.json. Every number is measured here, now.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as base  # noqa: E402 - benchmarks/run.py: data sets, the tutorial loop, the allocator setting

import torch  # noqa: E402

from tl_core import numerics  # noqa: E402
from tl_core.backbones import get_backbone  # noqa: E402
from tl_core.config import TrainConfig  # noqa: E402
from tl_core.data import scan_folder, validate  # noqa: E402
from tl_core.distributed import to_channels_last  # noqa: E402
from tl_core.model import build_head, build_model  # noqa: E402
from tl_core.transforms import ImageDataset, eval_transform  # noqa: E402

log, ROOT, SHARED, BACKBONE = base.log, base.ROOT, base.SHARED, base.BACKBONE


def precisions() -> list[str]:
    """PyTorch's precisions (what fine-tuning can use)."""
    return numerics.candidates()


def labels() -> list[str]:
    """Every way to run the frozen part here: PyTorch's precisions, then ``engine:precision``."""
    return numerics.candidates() + numerics.engine_candidates()


def frozen(model, spec, label: str):
    engine, precision = numerics.split_label(label)
    return numerics.frozen_forward(model, spec, numerics.Numerics(precision, engine=engine))


def load_batches(items, spec, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Decoded, preprocessed batches (decoding is the same for every precision: timed apart)."""
    ds = ImageDataset(items, eval_transform(spec.preprocess), spec.preprocess)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch)
    return [(to_channels_last(x, spec.channels_last), y) for x, y, _index in loader]


@torch.inference_mode()
def extract_interleaved(model, spec, batches, precs: list[str]) -> tuple[dict, dict]:
    """Features of every batch in every engine and precision, alternating them batch by batch (so
    noise from the shared machine hits all alike); returns (features, images/s medians)."""
    feats = {p: [] for p in precs}
    rates = {p: [] for p in precs}
    forwards = {p: frozen(model, spec, p) for p in precs}
    for forward in forwards.values():
        forward(batches[0][0])  # warm-up (and an engine's compilation), untimed
    for x, _y in batches:
        for p in precs:
            t = time.perf_counter()
            f = forwards[p](x)
            rates[p].append(len(x) / (time.perf_counter() - t))
            feats[p].append(f.half().float())  # as cached
    return {p: torch.cat(v) for p, v in feats.items()}, {p: statistics.median(v) for p, v in rates.items()}


def train_head(feats: torch.Tensor, labels: torch.Tensor, n_cls: int, dim: int, epochs: int = 30) -> torch.nn.Module:
    torch.manual_seed(0)
    head = build_head(dim, n_cls)
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    for _epoch in range(epochs):
        head.train()
        for idx in torch.randperm(len(feats)).split(32):
            loss = torch.nn.functional.cross_entropy(head(feats[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return head.eval()


def accuracy(head, feats, labels) -> float:
    with torch.no_grad():
        return float((head(feats).argmax(1) == labels).float().mean())


def extraction_section(name: str, train_dir: Path, test_dir: Path | None, per_class: int, peak: float) -> dict:
    spec = get_backbone(BACKBONE)
    if test_dir is None:
        scan = validate(scan_folder(train_dir))[1]
        items = _per_class(scan.items, per_class)
        train_items, test_items = items[::2], items[1::2]
    else:
        train_items = _per_class(validate(scan_folder(train_dir))[1].items, per_class)
        test_items = _per_class(validate(scan_folder(test_dir))[1].items, per_class // 2)
    model = to_channels_last(build_model(spec, 2), spec.channels_last).eval()
    precs = labels()
    out = {"data": name, "train": len(train_items), "test": len(test_items), "precisions": {}}
    t0 = time.perf_counter()
    batches = {part: load_batches(its, spec, 16) for part, its in (("train", train_items), ("test", test_items))}
    out["decode_images_per_s"] = round((len(train_items) + len(test_items)) / (time.perf_counter() - t0), 1)
    (tr, tr_rate), (te, _te_rate) = (extract_interleaved(model, spec, batches[part], precs)
                                     for part in ("train", "test"))
    ytr = torch.cat([y for _x, y in batches["train"]])
    yte = torch.cat([y for _x, y in batches["test"]])
    n_cls = int(ytr.max()) + 1
    for p in precs:
        head = train_head(tr[p], ytr, n_cls, spec.feature_dim)
        err = float((tr[p] - tr[numerics.FP32]).norm() / tr[numerics.FP32].norm())
        row = {"images_per_s": round(tr_rate[p], 1), "feature_error": round(err, 4),
               "head_test_accuracy": round(accuracy(head, te[p], yte), 4),
               "head_on_fp32_features_accuracy": round(accuracy(head, te[numerics.FP32], yte), 4),
               "speedup_vs_fp32": round(tr_rate[p] / tr_rate[numerics.FP32], 2),
               "share_of_peak": round(tr_rate[p] * spec.gflops
                                      / (peak * (2 if p.endswith(numerics.BF16) else 1)), 3)}
        out["precisions"][p] = row
        log(f"  {name} {p}: {row}")
    return out


def _per_class(items, n: int) -> list:
    seen: dict[int, int] = {}
    kept = []
    for it in items:
        seen[it.label] = seen.get(it.label, 0) + 1
        if seen[it.label] <= n:
            kept.append(it)
    return kept


def finetune_section(source: Path, work: Path, per_class: int, epochs: int) -> list[dict]:
    """Whole scenario 3 and 4 runs in each precision (``TL_PRECISION``), the order alternated."""
    rows = []
    data = subset(source, per_class, work / "ft-data")
    for scenario, order in ((3, precisions()), (4, precisions()[::-1])):
        for p in order:
            cfg = TrainConfig(data=str(data), scenario=scenario, epochs=epochs, head_epochs=1, patience=0,
                              cache_dir=str(work / "cache"), seed=0)
            os.environ["TL_PRECISION"] = p
            result, run = _train(cfg, work)
            recs = base.epoch_records(run, "finetune")
            epoch = statistics.median(r["seconds"] for r in recs)
            rows.append({"scenario": scenario, "precision": p, "epoch_seconds": round(epoch, 2),
                         "test_accuracy": result["test_accuracy"], "prefix_cache": result["prefix_cache"]})
            log(f"  fine-tune {rows[-1]}")
    os.environ.pop("TL_PRECISION", None)
    return rows


def _train(cfg: TrainConfig, work: Path):
    from tl_core.runs import RunDir
    from tl_core.train import train_run

    run = RunDir.create(work / "runs")
    cfg.save(run.config_file)
    return train_run(run, cfg), run


def subset(source: Path, per_class: int, dest: Path, classes: int | None = None) -> Path:
    """``per_class`` images of the first ``classes`` classes of ``source``, copied (the data check
    refuses links that leave the data set)."""
    for c in [d for d in sorted(source.iterdir()) if d.is_dir()][:classes]:
        (dest / c.name).mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(sorted(c.iterdir())[:per_class]):
            shutil.copyfile(f, dest / c.name / f"{i:05d}{f.suffix}")
    return dest


def click_section(source: Path, work: Path, repeats: int, per_class: int = 30, classes: int = 3) -> dict:
    """``per_class`` x ``classes`` photos (90 by default): from the click (``launch``) to the run's "succeeded" and to the first
    prediction (made in this process, which has torch loaded like the app's server), a warm worker
    against a cold process, alternated; every run computes its features afresh (a new cache)."""
    from tl_core import warm
    from tl_core.predict import Predictor

    data = subset(source, per_class, work / f"click-data-{per_class}x{classes}", classes=classes)
    photo = str(next(p for p in sorted(data.rglob("*.*"))))
    times: dict[str, list] = {"warm": [], "cold": []}
    for r in range(repeats):
        for mode in ("warm", "cold"):
            os.environ["TL_WARM_IDLE"] = "900"
            warm.prewarm()  # for the cold run too: its successor then sits idle instead of warming up
            _until(lambda: warm.ready_workers(), 600)
            os.environ["TL_WARM_IDLE"] = "900" if mode == "warm" else "0"
            cfg = TrainConfig(data=str(data), scenario=1, cache_dir=str(work / "click-cache" / f"{mode}{r}"))
            t0 = time.perf_counter()
            trained, run = _timed_launch(cfg, work / "click-runs")
            answer = Predictor.from_run(run.path).predict([photo], k=1)[0][0]
            first = time.perf_counter() - t0
            times[mode].append({"trained_s": round(trained, 2), "first_prediction_s": round(first, 2),
                                "run_seconds": run.status()["result"]["seconds"], "test_accuracy":
                                run.status()["result"]["test_accuracy"], "answer": answer["label"]})
            log(f"  click {mode} {r}: {times[mode][-1]}")
    warm.kill_workers()
    return {mode: {"runs": rows, "trained_s": statistics.median(x["trained_s"] for x in rows),
                   "first_prediction_s": statistics.median(x["first_prediction_s"] for x in rows)}
            for mode, rows in times.items()}


def _until(condition, timeout: float, poll: float = 0.2):
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise TimeoutError("benchmark step did not finish")
        time.sleep(poll)


def sweep_section(source: Path, work: Path, sizes: list[int], epochs: int) -> list[dict]:
    """Head-only: the tutorial loop (in this process, torch already imported and the backbone loaded
    before its clock starts: kind to it) against a whole cold ``python -m tl_core train`` process, the
    same run through ``launch()`` with a warm worker, and one extraction pass, per N."""
    from tl_core.data import Item
    from tl_core.features import extract_features

    spec = get_backbone(BACKBONE)
    chosen = numerics.choose(spec).label
    n_classes = sum(1 for d in source.iterdir() if d.is_dir())
    rows = []
    for n in sizes:
        dirs = base.make_dataset(source, n // n_classes, work / f"sweep{n}")
        _materialise(work / f"sweep{n}")
        items = [Item(str(p), 0) for part in ("train", "val", "test") for p in sorted(dirs[part].rglob("*.*"))]
        model = to_channels_last(build_model(spec, 2), spec.channels_last)
        passes = {}
        for p in labels():
            engine, precision = numerics.split_label(p)
            t0 = time.perf_counter()
            extract_features(model, items, spec, 32, numerics=numerics.Numerics(precision, engine=engine))
            passes[p] = time.perf_counter() - t0
        tutorial = base.tutorial_baseline(dirs, epochs, 32, 0)
        cmd = [sys.executable, "-m", "tl_core", "train", "--data", str(dirs["train"].parent), "--test-data",
               str(dirs["test"]), "--scenario", "1", "--epochs", str(epochs), "--patience", "0", "--cache-dir",
               str(work / f"sweep-cache{n}"), "--runs-dir", str(work / "sweep-runs"), "--json"]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TL_MAX_CONCURRENT": "99", "TL_WARM_IDLE": "0"}
        t0 = time.perf_counter()
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, check=True).stdout
        ours = time.perf_counter() - t0
        result = json.loads(out.strip().splitlines()[-1])
        warm_s, warm_result = _warm_click(dirs, epochs, work / f"sweep-warm{n}")
        rows.append({"n": len(items), "tutorial_s": round(tutorial["seconds"], 1),
                     "tutorial_test_accuracy": round(tutorial["test_accuracy"], 4), "ours_process_s": round(ours, 1),
                     "ours_test_accuracy": result["test_accuracy"], "ours_precision": result.get("precision"),
                     "ours_engine": result.get("engine"),
                     "speedup": round(tutorial["seconds"] / ours, 2),
                     "ours_warm_s": round(warm_s, 1), "ours_warm_test_accuracy": warm_result["test_accuracy"],
                     "speedup_warm": round(tutorial["seconds"] / warm_s, 2),
                     "one_pass_s": {p: round(t, 1) for p, t in passes.items()},
                     "ours_vs_one_pass": round(ours / passes[chosen], 2)})
        log(f"  sweep {rows[-1]}")
    return rows


def _warm_click(dirs: dict[str, Path], epochs: int, work: Path) -> tuple[float, dict]:
    """The same head-only run through ``launch`` (what the Train button calls) with a warm worker
    waiting (as the app keeps one), timed to "succeeded"; then waits until the successor the worker
    starts is warm, so its start-up does not share the CPU with the next measurement."""
    from tl_core import warm

    os.environ["TL_WARM_IDLE"] = "900"
    warm.prewarm()
    _until(lambda: warm.ready_workers(), 600)
    cfg = TrainConfig(data=str(dirs["train"].parent), test_data=str(dirs["test"]), scenario=1, epochs=epochs,
                      patience=0, cache_dir=str(work / "cache"))
    seconds, run = _timed_launch(cfg, work / "runs")
    _until(lambda: warm.ready_workers(), 600)
    warm.kill_workers()
    return seconds, run.status()["result"]


def _timed_launch(cfg: TrainConfig, runs: Path):
    """``launch`` (what the Train button calls) until the run ends: its seconds and the run; a run
    that did not succeed stops the benchmark."""
    from tl_core.launcher import launch
    from tl_core.runs import TERMINAL_STATES, run_state

    t0 = time.perf_counter()
    run = launch(cfg, runs)
    _until(lambda: run_state(run) in TERMINAL_STATES, 900, poll=0.02)
    seconds = time.perf_counter() - t0
    if run_state(run) != "succeeded":
        raise RuntimeError(f"run {run.path} {run_state(run)}: {run.status().get('error')}")
    return seconds, run


def _materialise(root: Path) -> None:
    """Replace the links ``run.make_dataset`` writes by copies (the data check refuses links that
    leave the data set)."""
    for link in [p for p in root.rglob("*") if p.is_symlink()]:
        target = link.resolve()
        link.unlink()
        shutil.copyfile(target, link)


def _measure(args, cats: Path, signs: Path, peak: float, work: Path) -> dict:
    quick = args.quick
    spec = get_backbone(BACKBONE)
    results: dict = {"quick": quick, "bf16_native": numerics.bf16_native(), "precisions": labels(),
                     "cpu_peak_gflops_fp32": round(peak, 1), "threads": torch.get_num_threads(),
                     "measured_choice": numerics.measure(spec), "load_average_at_start": os.getloadavg()}
    log(f"choice here: {results['measured_choice']['choice']} ({results['measured_choice']['reason']})")
    if "extract" in args.only:
        results["extraction"] = [
            extraction_section("cats-vs-dogs", cats / "train", cats / "validation" if cats != signs else None,
                               100 if quick else 500, peak),
            extraction_section("sign-language-digits", signs, None, 20 if quick else 100, peak)]
    if "finetune" in args.only:
        results["finetune"] = finetune_section(signs, work, 20 if quick else 60, 2 if quick else 3)
    if "click" in args.only:
        data, per_class, classes = args.click or ("signs", 30, 3)
        source = signs if data == "signs" else (cats / "train" if cats != signs else signs)
        results[f"click_{int(per_class) * int(classes)}_photos"] = click_section(source, work, 2 if quick else 3,
                                                                                  int(per_class), int(classes))
    if "sweep" in args.only:
        results["head_only_sweep"] = sweep_section(cats / "train" if cats != signs else signs, work,
                                                   args.sizes or [90, 250, 2000], 20)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", nargs="*", default=["extract", "finetune", "click", "sweep"])
    ap.add_argument("--sizes", nargs="*", type=int, help="N of the head-only sweep (default 90 250 2000)")
    ap.add_argument("--click", nargs=3, metavar=("DATA", "PER_CLASS", "CLASSES"),
                    help="the click section on another set: signs|cats, photos per class, classes (default signs 30 3)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "numerics.json"))
    args = ap.parse_args()
    cats, signs = SHARED / "cats-vs-dogs", SHARED / "sign-language-digits"
    if not cats.is_dir():
        cats = signs = base.SAMPLE
    peak = base.cpu_peak_gflops()[0]
    work = Path(tempfile.mkdtemp(prefix="tl-numerics-"))
    os.environ.setdefault("TL_CACHE_DIR", str(work / "tl-cache"))
    try:
        results = _measure(args, cats, signs, peak, work)
    finally:
        from tl_core.warm import kill_workers

        kill_workers()  # warm workers waiting on this cache (TL_WARM_IDLE), before their folder goes
        shutil.rmtree(work, ignore_errors=True)  # runs, caches and copies: hundreds of MB per call
    results["load_average_at_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
