"""Click to trained model, in the browser: a class's photos, Train pressed in Chromium, "Done" shown.

    .venv/bin/python benchmarks/click_browser.py [--repeats 3] [--per-class 30] [--classes 3]

What a teacher sees: the app on 127.0.0.1 (its own warm worker, as it keeps one), a folder of
``classes`` x ``per-class`` photos chosen on the Data page (sign-language digits from ../shared, else
the bundled sample), scenario 1 as the Plan page suggests, then **Start training** pressed on the
Train page and the clock stopped when the page shows "Done in". Each repeat uses its own copy of
the photos, so its features are computed afresh; the numerics measurement is made once before
(as on a machine that has trained before). Also records the run's own seconds, the click to
the first answer on the Predict page for one photo, and how long after "Done in" a warm worker
waits again (a click before that starts a cold process). Prints JSON and writes
benchmarks/click_browser.json. Nothing is asserted or copied from earlier runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SIGNS = ROOT.parent / "shared" / "datasets" / "sign-language-digits"
SAMPLE = ROOT / "sample_data" / "sign-language-digits"


def copy_photos(source: Path, dest: Path, per_class: int, classes: int) -> int:
    n = 0
    for c in [d for d in sorted(source.iterdir()) if d.is_dir()][:classes]:
        (dest / c.name).mkdir(parents=True)
        for i, f in enumerate(sorted(f for f in c.iterdir() if f.is_file())[:per_class]):
            shutil.copyfile(f, dest / c.name / f"{i:05d}{f.suffix}")
            n += 1
    return n


def until(condition, timeout: float, poll: float = 0.05) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise TimeoutError("benchmark step did not finish")
        time.sleep(poll)


def goto_page(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    page.get_by_role("heading", name=re.compile(re.escape(title.split(" · ")[1]))).first.wait_for(timeout=120_000)


def settled(page) -> None:
    """The page's script run has ended (as tests/conftest.py waits; that module is not imported here:
    it switches warm workers off for the tests)."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=120_000)


def one_click(page, folder: str, n: int, photo: Path) -> dict:
    from tl_core import warm

    goto_page(page, "2 · Data")
    page.get_by_text("A folder on this server").first.click()
    page.locator('[data-testid="stSelectbox"]', has_text="Folder").click()
    page.get_by_role("option", name=folder, exact=True).click()
    page.get_by_role("button", name="Use this folder").click()
    page.get_by_text(re.compile(rf"\d+ classes, {n} usable images")).first.wait_for(timeout=120_000)
    settled(page)
    goto_page(page, "4 · Train")
    settled(page)
    until(lambda: warm.ready_workers(), 600)  # the app keeps one warm; wait as a teacher would not have to
    t0 = time.perf_counter()
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Done in").first.wait_for(timeout=600_000)
    trained = time.perf_counter() - t0
    run_id = re.search(r"run=([\w-]+)", page.url).group(1)
    goto_page(page, "6 · Predict")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(photo))
    page.get_by_text(re.compile(r"\(\d+\.\d%\)")).first.wait_for(timeout=120_000)
    first = time.perf_counter() - t0
    until(lambda: warm.ready_workers(), 600)
    next_warm = time.perf_counter() - t0 - trained  # "Done in" shown → the next click would find a warm worker
    status = json.loads((Path(os.environ["TL_RUNS_DIR"]) / run_id / "status.json").read_text())
    return {"click_to_done_s": round(trained, 2), "click_to_first_answer_s": round(first, 2),
            "done_to_next_warm_worker_s": round(next_warm, 2),
            "run_seconds": status["result"]["seconds"], "warm_worker": bool(status.get("warm")),
            "test_accuracy": status["result"]["test_accuracy"], "engine": status["result"].get("engine")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--per-class", type=int, default=30)
    ap.add_argument("--classes", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tl-click-"))
    os.environ.update({"TL_RUNS_DIR": str(tmp / "runs"), "TL_DATA_ROOT": str(tmp / "data"),
                       "TL_CACHE_DIR": str(tmp / "cache")})
    source = SIGNS if SIGNS.is_dir() else SAMPLE
    folders = [f"photos{r}" for r in range(args.repeats)]
    n = [copy_photos(source, tmp / "data" / f, args.per_class, args.classes) for f in folders][0]
    photo = next(p for p in sorted((tmp / "data" / folders[0]).rglob("*")) if p.is_file())
    subprocess.run([sys.executable, "-m", "tl_core", "numerics"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)

    from playwright.sync_api import sync_playwright

    from benchmarks.live_predict import serve

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc, url = serve(tmp / "runs", port), f"http://127.0.0.1:{port}"
    rows = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                        args=["--disable-gpu", "--no-first-run"])
            for folder in folders:  # a new session each time, as a new student's browser: no earlier run shown
                page = browser.new_page(viewport={"width": 1300, "height": 1600})
                page.goto(url)
                page.get_by_role("heading", name="1 · Plan").first.wait_for(timeout=120_000)
                rows.append(one_click(page, folder, n, photo))
                page.close()
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(15)
        from tl_core.warm import kill_workers

        kill_workers()  # the app's warm workers (this TL_CACHE_DIR's), before their folder goes
        shutil.rmtree(tmp, ignore_errors=True)
    result = {"photos": n, "classes": args.classes, "data": str(source), "runs": rows,
              "click_to_done_s_median": statistics.median(r["click_to_done_s"] for r in rows),
              "click_to_first_answer_s_median": statistics.median(r["click_to_first_answer_s"] for r in rows),
              "cpu_cores": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 1),
              "note": "the load average includes this benchmark's own server, browser and training"}
    print(json.dumps(result, indent=1))
    (ROOT / "benchmarks" / "click_browser.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
