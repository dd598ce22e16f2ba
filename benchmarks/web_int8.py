"""Benchmark of the portable exports: int8 against fp32, and the web page in Chromium.

    .venv/bin/python benchmarks/run.py --web [--quick]

For dogs-vs-cats (scenario 1) and sign-language digits (scenario 3), from ../shared/datasets when
present: train a run (capped per class), export ONNX fp32 and int8 (export time, test accuracy,
size, images/s with onnxruntime here), then export the web page and open it from file:// in
Chromium: time until the model is ready and predictions per second (one image at a time, as the
live camera does). Every number is measured in this run.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tl_core.config import TrainConfig  # noqa: E402
from tl_core.export import export_run  # noqa: E402
from tl_core.runs import RunDir  # noqa: E402
from tl_core.train import train_run  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets"
CASES = [("cats-vs-dogs", 1, "train", "validation"), ("sign-language-digits", 3, None, None)]


def _train(data: Path, scenario: int, test: Path | None, per_class: int, work: Path) -> RunDir:
    run = RunDir.create(work / "runs")
    cfg = TrainConfig(data=str(data), test_data=str(test) if test else "", scenario=scenario, epochs=3,
                      head_epochs=5, max_images_per_class=per_class, cache_dir=str(work / "cache"))
    cfg.save(run.config_file)
    train_run(run, cfg)
    return run


def page_speed(folder: Path, n: int = 20) -> dict:
    """Chromium, file://, network refused: time to a ready model and single-image predictions/s."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--disable-gpu"])
        page = browser.new_page()
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
        start = time.perf_counter()
        page.goto((folder / "index.html").as_uri())
        page.wait_for_function("document.body.dataset.ready === '1'", timeout=300_000)
        load = time.perf_counter() - start
        rate = page.evaluate("""async (n) => {
            const px = new Uint8Array(tl.size * tl.size * 3).map((_, i) => (i * 7) % 256);
            await tl.classifyPixels(px, 1);
            const t0 = performance.now();
            for (let i = 0; i < n; i++) await tl.classifyPixels(px, 1);
            return n / ((performance.now() - t0) / 1000); }""", n)
        browser.close()
    return {"page_load_s": round(load, 2), "predictions_per_s": round(rate, 1)}


def run_case(name: str, scenario: int, train: str | None, test: str | None, per_class: int, work: Path) -> dict:
    root = SHARED / name
    run = _train(root / train if train else root, scenario, root / test if test else None, per_class, work)
    out: dict = {"data": name, "scenario": scenario, "per_class": per_class}
    for fmt, q in (("onnx", None), ("onnx", "int8"), ("web", "int8"), ("web", None)):
        start = time.perf_counter()
        info = export_run(run.path, fmt, work / f"{name}-{fmt}-{q}", quantize=q, accept_loss=True)
        out[f"export_{fmt}_{q or 'fp32'}_s"] = round(time.perf_counter() - start, 1)
        if q and fmt == "onnx":
            out["int8"] = {k: info["quantization"][k] for k in ("fp32", "int8", "loss_points", "size_ratio",
                                                              "speed_ratio", "top1_agreement")}
        if fmt == "web":
            out[f"page_{q or 'fp32'}"] = page_speed(work / f"{name}-{fmt}-{q}")
    return out


def run_web_benchmark(quick: bool, work: Path) -> list[dict]:
    per_class = 60 if quick else 300
    results = []
    for name, scenario, train, test in CASES:
        if not (SHARED / name).is_dir():
            print(f"skipped {name}: {SHARED / name} not found", file=sys.stderr)
            continue
        results.append(run_case(name, scenario, train, test, per_class, work))
        print(results[-1], file=sys.stderr, flush=True)
    return results


if __name__ == "__main__":
    import json
    import tempfile

    quick = "--quick" in sys.argv
    work = Path(tempfile.mkdtemp(prefix="tl-bench-web-"))
    try:
        res = run_web_benchmark(quick, work)
        print(json.dumps(res, indent=1))
        (ROOT / "benchmarks" / "web_int8.json").write_text(json.dumps(res, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
