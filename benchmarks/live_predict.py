"""Live prediction, end to end: frame sent by the browser's camera → top-k bars drawn, measured in a
real Chromium against a real server, with efficientnet_lite0.

    .venv/bin/python benchmarks/live_predict.py [--seconds 20] [--run-dir RUN]

Trains a head-only lite0 run on three classes of the bundled sample first (unless --run-dir), starts
the app on 127.0.0.1, feeds Chromium's fake camera a clip made from the sample photos, presses
Start on Predict → Live camera and reads what the camera widget measures itself: answers per
second and the time from sending a frame to drawing its bars. Also times the prediction alone
in this process (decode, resize, forward), to show how much of a frame's time is the model.
Prints JSON and writes benchmarks/live_predict.json. Nothing is asserted or copied from earlier runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
SAMPLE = ROOT / "sample_data" / "sign-language-digits"
CLASSES = ("0", "5", "9")
CAMERA_JS = "() => [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)" \
            ".map(s => s.querySelector('.tlcam')).filter(Boolean).map(r => ({...r.dataset}))[0] || {}"


def train(tmp: Path) -> Path:
    data = tmp / "data" / "hands"
    for c in CLASSES:
        shutil.copytree(SAMPLE / c, data / c)
    subprocess.run([sys.executable, "-m", "tl_core", "train", "--data", str(data), "--scenario", "1",
                    "--runs-dir", str(tmp / "runs"), "--cache-dir", str(tmp / "cache")], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    return next(p for p in (tmp / "runs").iterdir() if (p / "config.json").is_file())


def model_only(run_dir: Path, n: int = 40) -> float:
    """Milliseconds per prediction of one 256 px camera frame, in this process (warm)."""
    import io

    from PIL import Image

    from tl_core.predict import Predictor

    import torch

    from tl_core import settings

    torch.set_num_threads(settings.server_threads())  # as the web server runs it
    predictor = Predictor.from_run(run_dir)
    img = Image.open(sorted((SAMPLE / "5").glob("*.JPG"))[0]).convert("RGB")
    img.thumbnail((256, 256))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    for _i in range(5):
        predictor.predict([buf.getvalue()], 3)
    times = []
    for _i in range(n):
        t = time.perf_counter()
        predictor.predict([buf.getvalue()], 3)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def serve(runs: Path, port: int, cpus: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "TL_RUNS_DIR": str(runs), "TL_DATA_ROOT": str(runs.parent / "data"), "PYTHONPATH": str(ROOT)}
    pin = ["taskset", "-c", cpus] if cpus else []
    proc = subprocess.Popen([*pin, sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.address", "127.0.0.1", "--server.port", str(port),
                             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    for _i in range(300):
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return proc
        except OSError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("the server did not start")


def measure_in_browser(url: str, clip: Path, seconds: float, cpus: str | None = None) -> dict:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if cpus:  # the browser on a core of its own, as on a student's own device
        chromium = str(clip.parent / "chromium-pinned")
        Path(chromium).write_text(f'#!/bin/sh\nexec taskset -c {cpus} {shlex.quote(shutil.which("chromium"))} "$@"\n')
        os.chmod(chromium, 0o755)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--disable-gpu", "--no-first-run", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}"])
        context = browser.new_context(viewport={"width": 1300, "height": 1400})
        context.grant_permissions(["camera"])
        page = context.new_page()
        page.goto(url)
        page.get_by_role("heading", name="1 · Plan").first.wait_for(timeout=120_000)
        page.locator('[data-testid="stSidebarNav"] a', has_text="6 · Predict").first.click()
        page.get_by_role("heading", name="6 · Predict").first.wait_for(timeout=120_000)
        page.get_by_role("tab", name="Live camera").click(timeout=120_000)
        page.get_by_role("button", name="Start").click()
        page.wait_for_function(f"() => +(({CAMERA_JS})().answers || 0) >= 5", timeout=120_000)  # warm
        first, t0 = page.evaluate(CAMERA_JS), time.time()
        page.wait_for_timeout(int(seconds * 1000))
        last, t1 = page.evaluate(CAMERA_JS), time.time()
        browser.close()
    answers = int(last["answers"]) - int(first["answers"])
    latencies = [float(x) for x in last["latencies"].split(",")][-min(answers, 100):] if answers else [0.0]
    q = statistics.quantiles(latencies, n=10) if len(latencies) > 1 else latencies * 9
    return {"answers": answers, "seconds": round(t1 - t0, 1), "predictions_per_s": round(answers / (t1 - t0), 2),
            "frame_to_bars_ms": {"p10": round(q[0]), "median": round(statistics.median(latencies)),
                                 "p90": round(q[-1])},
            "share_of_frames_under_200_ms": round(sum(x < 200 for x in latencies) / len(latencies), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--run-dir", type=Path)
    parser.add_argument("--split-cores", action="store_true",
                        help="server on core 0, browser on core 1 (the browser as on its own device; needs 2 cores)")
    args = parser.parse_args()
    from camera_clip import write_y4m

    tmp = Path(tempfile.mkdtemp(prefix="tl-live-"))
    run_dir = args.run_dir or train(tmp)
    runs = tmp / "runs"
    if args.run_dir:
        runs.mkdir()
        shutil.copytree(args.run_dir, runs / args.run_dir.name)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clip = write_y4m(tmp / "five.y4m", sorted((SAMPLE / "5").glob("*.JPG"))[:4], seconds_each=0.5)
    cores = sorted(os.sched_getaffinity(0))
    split = args.split_cores and len(cores) >= 2 and shutil.which("taskset")
    proc = serve(runs, port, str(cores[0]) if split else None)
    try:
        result = measure_in_browser(f"http://127.0.0.1:{port}", clip, args.seconds, str(cores[1]) if split else None)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    print(json.dumps(result), flush=True)
    result["model_only_ms"] = round(model_only(run_dir), 1)
    result["backbone"] = json.loads((run_dir / "config.json").read_text())["backbone"]
    result["cpu_cores"] = os.cpu_count()
    result["split_cores"] = bool(split)
    result["load_average_1min"] = round(os.getloadavg()[0], 1)
    print(json.dumps(result, indent=1))
    (ROOT / "benchmarks" / "live_predict.json").write_text(json.dumps(result, indent=1) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
