"""Performance benchmarks: ours against what a user would otherwise write, in the same run.

    .venv/bin/python benchmarks/run.py            # full (~20-30 min on 2 CPU cores)
    .venv/bin/python benchmarks/run.py --quick    # reduced (< 5 min)

Uses ../shared/datasets/cats-vs-dogs and sign-language-digits when present, else the bundled sample.
Prints a table and writes benchmarks/results.json. Every number is measured here, now: nothing is
asserted, nothing is copied from earlier runs.

1. Head-only (scenario 1): the PyTorch transfer-learning tutorial loop (torchvision ImageFolder +
   transforms + DataLoader, the frozen backbone re-run every epoch, a head trained on top) against
   ``tl_core`` (features computed once and cached, the head trained on the vectors), same split,
   backbone, head, epochs, batch size and seed; plus one bare feature-extraction pass, and a rerun
   with other head settings (cache hit).
2. Frozen-prefix cache: fine-tune epochs (scenario 3, no augmentation) on cached activations
   against the same epochs on images; the frozen share of forward FLOPs, counted.
3. Input pipeline: share of the training epoch spent waiting for batches, with augmentation, with
   the decoded-image cache (and the first epoch, which fills it).
4. Forward speed: GFLOP/s per backbone against this CPU's peak (2 cores x AVX2 FMA).
5. Prediction latency: a warm single-image prediction (decode, resize, forward) against the bare
   forward of the same image.
6. Scaling: whole head-only runs for growing N: time and peak memory.
7. ``--advice`` (alone): the measured advice on the shared data sets, its pick and cost; with
   ``--with-lab`` against the full lab (``benchmarks/advice.py``).
8. ``--web`` (alone): int8 against fp32 and the web page in Chromium (``benchmarks/web_int8.py``).
9. ``--live`` (alone): the Predict page's live camera in Chromium against the app's server, frame
   sent to bars drawn (``benchmarks/live_predict.py``; ``--split-cores`` puts the browser on a core of
   its own, as on a student's device).

Numerics (fp32 vs bf16 per engine, with the accuracy of the head trained on each), fine-tuning in
both precisions, click-to-trained with the warm worker, and the head-only sweep at N = 90, 250,
2000: ``benchmarks/numerics_bench.py``, which reuses this file's data sets and tutorial loop.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tl_core.launcher import FAST_MALLOC  # noqa: E402

if sys.platform.startswith("linux") and "GLIBC_TUNABLES" not in os.environ:
    # The allocator setting tl_core applies to its own processes; it must be set before start.
    os.environ["GLIBC_TUNABLES"] = FAST_MALLOC
    os.execv(sys.executable, [sys.executable, *sys.argv])

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from torchvision import datasets, transforms  # noqa: E402

from tl_core.backbones import get_backbone  # noqa: E402
from tl_core.config import TrainConfig  # noqa: E402
from tl_core.data import scan_folder, validate  # noqa: E402
from tl_core.estimate import measure_forward  # noqa: E402
from tl_core.features import extract_features  # noqa: E402
from tl_core.model import build_head, build_model  # noqa: E402
from tl_core.predict import Predictor  # noqa: E402
from tl_core.runs import RunDir  # noqa: E402
from tl_core.splits import make_split  # noqa: E402
from tl_core.train import train_run  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets"
SAMPLE = ROOT / "sample_data" / "sign-language-digits"
BACKBONE = "efficientnet_lite0"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cpu_peak_gflops() -> tuple[float, float, str]:
    """Peak fp32 GFLOP/s: cores x 2 FMA units x lanes x 2 flops x nominal clock, with 8 lanes
    (AVX2, the issue's yardstick) and, when the CPU reports AVX-512, 16 lanes (what oneDNN uses)."""
    mhz, flags = 0.0, set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz") and not mhz:
            mhz = float(line.split(":")[1])
        if line.startswith("flags") and not flags:
            flags = set(line.split(":")[1].split())
    cores = len(os.sched_getaffinity(0))
    avx2 = cores * 2 * 8 * 2 * mhz / 1000
    lanes = 16 if "avx512f" in flags else 8
    note = (f"{cores} cores x 2 FMA x {lanes} fp32 lanes x 2 flops x {mhz / 1000:.2f} GHz (nominal; turbo "
            f"may be higher)" + ("; the CPU reports AVX-512, so the AVX2 peak would be exceeded" if lanes == 16
                                  else ""))
    return cores * 2 * lanes * 2 * mhz / 1000, avx2, note


# ----------------------------------------------------------------------------------------------
# Data: one split, written as symlinked ImageFolder trees so the tutorial loop reads the same files


def make_dataset(source: Path, per_class: int, work: Path, seed: int = 0) -> dict[str, Path]:
    scan = validate(scan_folder(source))[1]
    split = make_split(scan, 0.15, 0.15, seed)
    out = {}
    for part, items in split.items():
        taken: dict[int, int] = {}
        for it in items:
            taken[it.label] = taken.get(it.label, 0) + 1
            if taken[it.label] > max(1, round(per_class * {"train": 0.7}.get(part, 0.15))):
                continue
            dest = work / part / scan.classes[it.label] / f"{taken[it.label]:05d}{Path(it.path).suffix}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.abspath(it.path), dest)
        out[part] = work / part
    return out


# ----------------------------------------------------------------------------------------------
# 1. The baseline: the PyTorch transfer-learning tutorial, "ConvNet as fixed feature extractor"


def tutorial_baseline(dirs: dict[str, Path], epochs: int, batch_size: int, seed: int) -> dict:
    """What a user writes from the tutorial: the frozen backbone runs on every batch of every epoch.
    (Kindness to the baseline: the backbone stays in eval mode, so BatchNorm keeps ImageNet's
    statistics, and it gets the same channels_last and allocator settings as ours.)"""
    torch.manual_seed(seed)
    spec = get_backbone(BACKBONE)
    pre = spec.preprocess
    tf = transforms.Compose([
        transforms.Resize(pre.resize, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(pre.crop), transforms.ToTensor(), transforms.Normalize(pre.mean, pre.std)])
    sets = {p: datasets.ImageFolder(str(dirs[p]), tf) for p in ("train", "val", "test")}
    loaders = {p: DataLoader(ds, batch_size=batch_size, shuffle=p == "train", num_workers=0)
               for p, ds in sets.items()}
    backbone = spec.load_pretrained()
    backbone.reset_classifier(0)  # timm: pooled features out
    for prm in backbone.parameters():
        prm.requires_grad = False
    backbone = backbone.eval().to(memory_format=torch.channels_last)
    head = build_head(spec.feature_dim, len(sets["train"].classes))
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        head.train()
        for x, y in loaders["train"]:
            with torch.no_grad():
                f = backbone(x.contiguous(memory_format=torch.channels_last))
            loss = loss_fn(head(f), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        head.eval()
        with torch.no_grad():  # the tutorial validates every epoch
            for x, y in loaders["val"]:
                head(backbone(x.contiguous(memory_format=torch.channels_last)))
        log(f"  baseline epoch {epoch + 1}/{epochs}: {time.perf_counter() - t0:.0f} s")
    correct = n = 0
    with torch.no_grad():
        for x, y in loaders["test"]:
            pred = head(backbone(x.contiguous(memory_format=torch.channels_last))).argmax(1)
            correct += int((pred == y).sum())
            n += len(y)
    return {"seconds": time.perf_counter() - t0, "test_accuracy": correct / n}


def ours(dirs: dict[str, Path], runs: Path, cache: Path, **settings) -> tuple[dict, RunDir]:
    run = RunDir.create(runs)
    data = dirs["train"].parent  # train/ + val/ inside
    cfg = TrainConfig(data=str(data), test_data=str(dirs["test"]), backbone=BACKBONE, cache_dir=str(cache),
                      seed=0, **settings)
    t0 = time.perf_counter()
    result = train_run(run, cfg)
    result["wall_seconds"] = time.perf_counter() - t0
    return result, run


def extraction_pass(dirs: dict[str, Path]) -> float:
    """One bare forward pass over every image (train, val, test): the physical floor."""
    from tl_core.data import Item

    spec = get_backbone(BACKBONE)
    model = build_model(spec, 2).to(memory_format=torch.channels_last)
    items = [Item(str(p), 0) for part in ("train", "val", "test") for p in sorted(dirs[part].rglob("*.*"))]
    t0 = time.perf_counter()
    extract_features(model, items, spec, 32)
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------------------------
# 2. Frozen-prefix cache and 3. input pipeline


def frozen_flop_share(frozen_groups: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    spec = get_backbone(BACKBONE)
    model = build_model(spec, 10, pretrained=False).eval()
    x = torch.zeros(1, 3, spec.input_size, spec.input_size)
    counts = []
    for fn in (lambda: model.forward_body(x, 0, frozen_groups), lambda: model(x)):
        with torch.inference_mode(), FlopCounterMode(display=False) as fc:
            fn()
        counts.append(fc.get_total_flops())
    return counts[0] / counts[1]


def epoch_records(run: RunDir, stage: str) -> list[dict]:
    return [r for r in run.metrics() if r.get("kind") == "epoch" and r.get("stage") == stage]


# ----------------------------------------------------------------------------------------------
# 4. Forward speed and 5. prediction latency


def forward_table(names: list[str], peak: float) -> list[dict]:
    rows = []
    for name in names:
        spec = get_backbone(name)
        ips = measure_forward(spec, batch=16, repeats=3 if spec.gflops < 10 else 1)  # also feeds the Model page
        rows.append({"backbone": name, "images_per_s": round(ips, 1), "gflops_per_image": spec.gflops,
                     "gflops": round(ips * spec.gflops, 1), "share_of_peak": round(ips * spec.gflops / peak, 3)})
        log(f"  forward {name}: {ips:.1f} images/s, {ips * spec.gflops:.1f} GFLOP/s")
    return rows


def predict_latency(run: RunDir, images: list[Path], repeats: int = 5) -> dict:
    """Median warm latency of ``Predictor.predict`` on one image file against the bare forward of
    the same, already preprocessed, image; the two alternate so machine noise hits both alike."""
    predictor = Predictor.from_run(run.path)
    tensors = {im: predictor._tensor(im).unsqueeze(0).contiguous(memory_format=torch.channels_last)
               for im in images}

    def bare(im):
        with torch.inference_mode():
            predictor.model(tensors[im])

    full, fwd = [], []
    for r in range(repeats + 1):
        for im in images:
            for fn, out in ((lambda i: predictor.predict([i]), full), (bare, fwd)):
                t = time.perf_counter()
                fn(im)
                if r:  # the first round warms up
                    out.append(time.perf_counter() - t)
    full_ms, fwd_ms = statistics.median(full) * 1000, statistics.median(fwd) * 1000
    return {"predict_ms": round(full_ms, 2), "forward_ms": round(fwd_ms, 2), "ratio": round(full_ms / fwd_ms, 3)}


# ----------------------------------------------------------------------------------------------
# 6. Scaling


def run_scaling_with_memory(source: Path, sizes: list[int], work: Path, epochs: int) -> list[dict]:
    """Like ``scaling`` but each N in its own child, whose peak RSS the kernel reports on exit."""
    rows = []
    classes = [d for d in sorted(source.iterdir()) if d.is_dir()]
    for n in sizes:
        data = work / f"n{n}"
        per = n // len(classes)
        for c in classes:
            (data / c.name).mkdir(parents=True, exist_ok=True)
            for i, f in enumerate(sorted(c.iterdir())[:per]):
                os.symlink(os.path.abspath(f), data / c.name / f"{i:05d}{f.suffix}")
        cmd = [sys.executable, "-m", "tl_core", "train", "--data", str(data), "--scenario", "1", "--epochs",
               str(epochs), "--patience", "0", "--cache-dir", str(work / f"cache{n}"), "--runs-dir",
               str(work / "runs"), "--json"]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TL_MAX_CONCURRENT": "99"}
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        out = proc.stdout.read()
        usage = os.wait4(proc.pid, 0)[2]
        seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        validate(scan_folder(data))
        check = time.perf_counter() - t1
        result = json.loads(out.decode().strip().splitlines()[-1])
        n_real = per * len(classes)
        rows.append({"n": n_real, "seconds": round(seconds, 1), "ms_per_image": round(1000 * seconds / n_real, 1),
                     "scan_validate_seconds": round(check, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024),
                     "test_accuracy": result.get("test_accuracy")})
        log(f"  scaling N={n_real}: {seconds:.1f} s, peak RSS {usage.ru_maxrss / 1024:.0f} MB")
    return rows


# ----------------------------------------------------------------------------------------------


def pick_sources(quick: bool) -> tuple[Path, Path, str]:
    cats, signs = SHARED / "cats-vs-dogs" / "train", SHARED / "sign-language-digits"
    if cats.is_dir() and signs.is_dir():
        return cats, signs, "cats-vs-dogs/train (head-only, scaling), sign-language-digits (fine-tuning)"
    return SAMPLE, SAMPLE, "bundled sample (sign-language digits, 200 images)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="reduced sizes, under 5 minutes")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"))
    ap.add_argument("--web", action="store_true", help="only the int8 and web page benchmark (benchmarks/web_int8.py)")
    ap.add_argument("--advice", action="store_true",
                    help="only the measured advice on the shared data sets (writes benchmarks/advice_results.json)")
    ap.add_argument("--with-lab", action="store_true", help="with --advice: also run the full lab and compare")
    ap.add_argument("--live", action="store_true", help="only the live camera benchmark (benchmarks/live_predict.py)")
    ap.add_argument("--split-cores", action="store_true", help="with --live: server and browser on a core each")
    args = ap.parse_args()
    if args.live:
        extra = ["--split-cores"] if args.split_cores else []  # live_predict.py --help: its other options
        raise SystemExit(subprocess.call([sys.executable, str(ROOT / "benchmarks" / "live_predict.py"), *extra]))
    if args.advice:
        from benchmarks.advice import run as run_advice

        result = run_advice(SHARED, args.with_lab, log)
        (ROOT / "benchmarks" / "advice_results.json").write_text(json.dumps(result, indent=1))
        print(json.dumps(result, indent=1))
        return
    quick = args.quick
    if args.web:
        from benchmarks.web_int8 import run_web_benchmark

        work = Path(tempfile.mkdtemp(prefix="tl-bench-web-"))
        try:
            results = {"web_int8": run_web_benchmark(quick, work)}
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(json.dumps(results, indent=1))
        Path(args.out).with_name("web_int8.json").write_text(json.dumps(results, indent=1))
        return
    head_source, ft_source, data_note = pick_sources(quick)
    per_class = 60 if quick else 1000
    epochs, batch = 20, 32
    peak, peak_avx2, peak_note = cpu_peak_gflops()
    work = Path(tempfile.mkdtemp(prefix="tl-bench-"))
    results: dict = {"quick": quick, "data": data_note, "torch": torch.__version__, "threads": torch.get_num_threads(),
                     "cpu_peak_gflops": round(peak, 1), "cpu_peak_gflops_avx2": round(peak_avx2, 1),
                     "cpu_peak_note": peak_note}
    try:
        log(f"data: {data_note}; work folder {work}")
        # 1. head-only
        dirs = make_dataset(head_source, per_class, work / "head")
        counts = {p: sum(1 for _file in d.rglob("*.*")) for p, d in dirs.items()}
        log(f"1. head-only, {counts}, {epochs} epochs")
        base = tutorial_baseline(dirs, epochs, batch, 0)
        one_pass = extraction_pass(dirs)
        mine, run = ours(dirs, work / "runs", work / "cache", scenario=1, epochs=epochs, patience=0,
                         batch_size=batch)
        rerun, _rerun_dir = ours(dirs, work / "runs", work / "cache", scenario=1, epochs=epochs, patience=0,
                        batch_size=batch, head_hidden=128)
        results.update({
            "head_only_images": counts, "head_only_epochs": epochs,
            "baseline_seconds": round(base["seconds"], 1), "baseline_test_accuracy": round(base["test_accuracy"], 4),
            "head_only_seconds": round(mine["wall_seconds"], 1),
            "head_only_test_accuracy": round(mine["test_accuracy"], 4),
            "one_extraction_pass_seconds": round(one_pass, 1),
            "head_only_speedup_vs_baseline": round(base["seconds"] / mine["wall_seconds"], 2),
            "head_only_time_vs_one_extraction_pass": round(mine["wall_seconds"] / one_pass, 3),
            "rerun_other_head_seconds": round(rerun["wall_seconds"], 1), "rerun_feature_cache": rerun["feature_cache"],
        })
        # 5. prediction latency, on the head-only run
        images = sorted(dirs["test"].rglob("*.*"))[:10]
        lat = predict_latency(run, images)
        results.update({"predict_latency": lat, "predict_latency_ratio": lat["ratio"]})

        # 2. frozen-prefix cache (scenario 3, no augmentation): cached activations vs images
        ft_dirs = make_dataset(ft_source, 20 if quick else 100, work / "ft")
        ft_epochs = 3
        log(f"2. frozen-prefix cache, {sum(1 for _file in ft_dirs['train'].rglob('*.*'))} training images")
        cached, cached_run = ours(ft_dirs, work / "runs", work / "cache", scenario=3, epochs=ft_epochs,
                                  head_epochs=1, patience=0, batch_size=batch)
        plain, plain_run = ours(ft_dirs, work / "runs", work / "cache", scenario=3, epochs=ft_epochs,
                                head_epochs=1, patience=0, batch_size=batch, feature_cache=False)
        on_cache = statistics.median(r["seconds"] for r in epoch_records(cached_run, "finetune"))
        on_images = statistics.median(r["seconds"] for r in epoch_records(plain_run, "finetune")[1:])
        share = frozen_flop_share(cached["frozen_groups"])
        results.update({
            "prefix_cache_status": cached["prefix_cache"], "frozen_groups": cached["frozen_groups"],
            "frozen_flop_share": round(share, 3), "prefix_cache_epoch_seconds": round(on_cache, 2),
            "image_epoch_seconds": round(on_images, 2), "prefix_cache_epoch_ratio": round(on_cache / on_images, 3),
            "prefix_cache_epoch_goal": round(1 - share + 0.15, 3),
            "prefix_cache_test_accuracy": cached["test_accuracy"], "images_test_accuracy": plain["test_accuracy"],
        })
        # 3. input pipeline with augmentation (decoded-image cache)
        log("3. input pipeline, light augmentation")
        _aug_result, aug_run = ours(ft_dirs, work / "runs", work / "cache", scenario=3, epochs=ft_epochs, head_epochs=1,
                          patience=0, batch_size=batch, augment="light")
        recs = epoch_records(aug_run, "finetune")
        warm = recs[1:]
        results.update({
            "data_loading_share": round(sum(r["data_seconds"] for r in warm) / sum(r["seconds"] for r in warm), 3),
            "data_loading_share_first_epoch": round(recs[0]["data_seconds"] / recs[0]["seconds"], 3),
        })
        # 4. forward speed
        log("4. forward speed")
        names = [BACKBONE, "resnet18"] if quick else [BACKBONE, "resnet18", "resnet50", "vgg16",
                                                       "mobilenet_v3_large"]
        table = forward_table(names, peak)
        results.update({"forward": table, "forward_gflops": table[0]["gflops"]})
        # 6. scaling
        sizes = [100, 200] if quick else [250, 500, 1000, 2000]
        log(f"6. scaling {sizes}")
        results["scaling"] = run_scaling_with_memory(head_source, sizes, work / "scale", epochs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print_table(results)
    print(f"\nwritten: {args.out}")


def print_table(r: dict) -> None:
    rows = [
        ("head-only speed-up vs tutorial loop", f"{r['head_only_speedup_vs_baseline']:.1f}x", ">= 15x",
         f"{r['baseline_seconds']} s vs {r['head_only_seconds']} s, {r['head_only_epochs']} epochs"),
        ("head-only time / one extraction pass", f"{r['head_only_time_vs_one_extraction_pass']:.2f}", "<= 1.2",
         f"pass {r['one_extraction_pass_seconds']} s"),
        ("test accuracy ours / tutorial", f"{r['head_only_test_accuracy']:.3f} / {r['baseline_test_accuracy']:.3f}",
         "ours >=", ""),
        ("rerun, other head (cache hit)", f"{r['rerun_other_head_seconds']} s", "", r["rerun_feature_cache"]),
        ("prefix-cache epoch / image epoch", f"{r['prefix_cache_epoch_ratio']:.2f}",
         f"<= {r['prefix_cache_epoch_goal']:.2f}", f"frozen FLOP share {r['frozen_flop_share']:.2f}"),
        ("data loading share (augmentation)", f"{r['data_loading_share']:.1%}", "< 10%",
         f"first epoch, filling the cache: {r['data_loading_share_first_epoch']:.1%}"),
        ("predict latency / bare forward", f"{r['predict_latency_ratio']:.2f}", "<= 1.2",
         f"{r['predict_latency']['predict_ms']} ms vs {r['predict_latency']['forward_ms']} ms"),
        (f"forward GFLOP/s {BACKBONE}", f"{r['forward_gflops']}", "",
         f"peak {r['cpu_peak_gflops']} (AVX2 only: {r['cpu_peak_gflops_avx2']})"),
    ]
    print(f"\n{'measure':<38} {'value':>15} {'goal':>9}  notes")
    for name, value, goal, note in rows:
        print(f"{name:<38} {value:>15} {goal:>9}  {note}")
    print(f"\n{'backbone':<20} {'images/s':>9} {'GFLOP/s':>8} {'of peak':>8}")
    for f in r["forward"]:
        print(f"{f['backbone']:<20} {f['images_per_s']:>9} {f['gflops']:>8} {f['share_of_peak']:>8.0%}")
    print(f"\n{'N images':>8} {'seconds':>8} {'ms/image':>9} {'scan+validate s':>16} {'peak RSS MB':>12}")
    for s in r["scaling"]:
        print(f"{s['n']:>8} {s['seconds']:>8} {s['ms_per_image']:>9} {s['scan_validate_seconds']:>16} "
              f"{s['peak_rss_mb']:>12}")


if __name__ == "__main__":
    main()
