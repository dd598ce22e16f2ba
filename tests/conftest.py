"""Shared fixtures: tiny generated image folders (no download, no ../shared needed)."""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
# Real data sets next to the checkout on the development machines, never in the repository or in CI
# (unknown licences): tests that read them skip when the folder is absent.
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"
PYTHON = sys.executable
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 220)}
# The suite's runs compute in fp32 and start no warm worker, so their numbers do not depend on this
# CPU's bf16 support or on a worker left from another test; test_numerics and test_warm set their own.
os.environ.setdefault("TL_PRECISION", "fp32")
os.environ.setdefault("TL_WARM_IDLE", "0")


def make_image(colour, seed: int, size: int = 72) -> Image.Image:
    """A noisy picture of a class-specific pattern in a class-specific colour (red: stripes,
    green: dots, blue: checkerboard), easy to separate with ImageNet features."""
    rng = random.Random(seed)
    tint = tuple(max(0, min(255, c + rng.randint(-30, 30))) for c in colour)
    img = Image.new("RGB", (size, size), (235, 235, 235))
    draw = ImageDraw.Draw(img)
    step = rng.randint(7, 11)
    offset = rng.randint(0, step)
    if colour == COLOURS["red"]:
        for y in range(offset, size, step):
            draw.rectangle([0, y, size, y + step // 2], fill=tint)
    elif colour == COLOURS["green"]:
        for _ in range(14):
            x, y, r = rng.randint(0, size), rng.randint(0, size), rng.randint(3, 7)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=tint)
    else:
        for y in range(0, size, step):
            for x in range((y // step % 2) * step + offset, size, 2 * step):
                draw.rectangle([x, y, x + step - 1, y + step - 1], fill=tint)
    return img


def make_folder(root: Path, per_class: int = 12, classes=tuple(COLOURS), seed: int = 0) -> Path:
    for ci, name in enumerate(classes):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            make_image(COLOURS[name], seed * 1000 + ci * 100 + i).save(d / f"{name}_{i}.jpg", quality=92)
    return root


SHAPES = ("circle", "square", "triangle")


def make_shape_image(shape: str, seed: int, size: int = 72, strokes: int = 6) -> Image.Image:
    """One filled shape of random size, place, rotation and colour on a random background crossed
    by random strokes. Colour and texture say nothing about the class: only the shape does, which
    the network's late layers see and its early ones do not (the colour fixture above is separable
    from the first layers' features, so any recipe reaches 100% on it)."""
    rng = random.Random(seed)
    img = Image.new("RGB", (size, size), tuple(rng.randint(60, 200) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(strokes):
        draw.line([rng.randint(0, size) for _ in range(4)], fill=tuple(rng.randint(0, 255) for _ in range(3)),
                  width=rng.randint(1, 3))
    r = rng.randint(size // 8, size // 4)
    cx, cy = rng.randint(r, size - r), rng.randint(r, size - r)
    fill = tuple(rng.randint(0, 255) for _ in range(3))
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        corners = 4 if shape == "square" else 3
        a = rng.uniform(0, 2 * math.pi)
        draw.polygon([(cx + r * math.cos(a + 2 * math.pi * k / corners), cy + r * math.sin(a + 2 * math.pi * k / corners))
                      for k in range(corners)], fill=fill)
    return img


GLYPH_F = [(0, 0), (3, 0), (3, 1), (1, 1), (1, 2), (2, 2), (2, 3), (1, 3), (1, 5), (0, 5)]  # an "F", 3 x 5 cells


def make_mirror_image(mirrored: bool, seed: int, size: int = 96) -> Image.Image:
    """A filled "F" or its mirror image, of random size, place, small tilt and colour, on a random
    background with random strokes. ImageNet networks are trained on randomly flipped photos, so
    their frozen pooled features hardly tell an image from its mirror image: a head on them stays
    near chance (measured: 0.47 on 30 validation images) by construction."""
    rng = random.Random(seed)
    img = Image.new("RGB", (size, size), tuple(rng.randint(60, 200) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(4):
        draw.line([rng.randint(0, size) for _ in range(4)], fill=tuple(rng.randint(0, 255) for _ in range(3)), width=2)
    s = rng.uniform(size / 9, size / 7)
    cx, cy, a = rng.uniform(2 * s, size - 2 * s), rng.uniform(3 * s, size - 3 * s), rng.uniform(-0.4, 0.4)
    points = []
    for x, y in GLYPH_F:
        x, y = (x - 1.5) * s * (-1 if mirrored else 1), (y - 2.5) * s
        points.append((cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a)))
    draw.polygon(points, fill=tuple(rng.randint(0, 255) for _ in range(3)))
    return img


@pytest.fixture(scope="session")
def mirror_folder(tmp_path_factory) -> Path:
    """2 classes x 40 JPEGs: an "F" and its mirror image (read-only)."""
    root = tmp_path_factory.mktemp("data") / "mirror"
    for ci, name in enumerate(("F", "mirrored_F")):
        (root / name).mkdir(parents=True)
        for i in range(40):
            make_mirror_image(ci == 1, ci * 100000 + i).save(root / name / f"{name}_{i}.jpg", quality=90)
    return root


@pytest.fixture(scope="session")
def shapes_folder(tmp_path_factory) -> Path:
    """3 shape classes x 40 JPEGs (72 px) that need more than low-level features (read-only)."""
    root = tmp_path_factory.mktemp("data") / "shapes"
    for ci, shape in enumerate(SHAPES):
        (root / shape).mkdir(parents=True)
        for i in range(40):
            make_shape_image(shape, ci * 10000 + i).save(root / shape / f"{shape}_{i}.jpg", quality=90)
    return root


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """3 classes x 12 JPEGs (72 px)."""
    return make_folder(tmp_path_factory.mktemp("data") / "colours")


@pytest.fixture()
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


def run_cli(*args: str, cwd: Path = ROOT, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m tl_core ARGS`` in a subprocess, as other tools call it."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([PYTHON, "-m", "tl_core", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


@pytest.fixture()
def env(tmp_path, monkeypatch):
    """Runs, data and caches of one test in its own temporary folder (AppTest and launched runs)."""
    monkeypatch.setenv("TL_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("TL_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TL_STATIC_DIR", str(tmp_path / "static"))
    monkeypatch.chdir(ROOT)
    return tmp_path


@pytest.fixture(scope="session")
def trained_run(image_folder, tmp_path_factory):
    """A head-only run trained on ``image_folder`` (a few seconds), shared by the tests that need one."""
    from tl_core.config import TrainConfig
    from tl_core.runs import RunDir
    from tl_core.train import train_run

    tmp = tmp_path_factory.mktemp("trained")
    run = RunDir.create(tmp / "runs")
    cfg = TrainConfig(data=str(image_folder), scenario=1, cache_dir=str(tmp / "cache"))
    cfg.save(run.config_file)
    train_run(run, cfg)
    return run


@pytest.fixture(scope="session")
def web_export(trained_run, tmp_path_factory):
    """``trained_run`` exported as a web page once (folder, export info), read-only for the tests
    that open it in Python and in Chromium."""
    from tl_core.export import export_run

    out = tmp_path_factory.mktemp("web") / "export-web"
    return out, export_run(trained_run.path, "web", out)


def wait_for(condition, timeout: float = 240, what: str = "the condition", poll: float = 0.2):
    """Wait for an event a run writes (an epoch, a state); fail loudly at the deadline, never pass
    silently. Returns the condition's last (truthy) value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")


def serving(url: str) -> bool:
    """True when the Streamlit server at ``url`` answers its health check."""
    import urllib.request

    try:
        return urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok"
    except OSError:
        return False


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_streamlit(port: int, env: dict) -> tuple[subprocess.Popen, str]:
    """``streamlit run app.py`` on 127.0.0.1:``port`` in its own process group, answering when this
    returns (else it is killed and the wait fails loudly)."""
    proc = subprocess.Popen([PYTHON, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.address", "127.0.0.1", "--server.port", str(port),
                             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: serving(url), 60, "streamlit to start")
    except AssertionError:
        stop_group(proc, 0)
        raise
    return proc, url


def settled(page, timeout: float = 60_000) -> None:
    """Wait until the page's script run has ended (Streamlit marks its root element): after it, what
    the page does not show it will not show, without sleeping a guess."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=timeout)


def rerun_done(page) -> None:
    """After an action that reruns the script: wait for that run to end. The page marks a run only
    after the action's message reached the server, so first the run is awaited (briefly: a quick one
    may already be over), then its end."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):
        page.locator('[data-testid="stApp"][data-test-script-state="running"]').wait_for(timeout=3_000)
    settled(page)


def stop_group(proc: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM a server's process group, SIGKILL what is left after ``grace`` seconds."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


def held(run, epoch: int, timeout: float = 240) -> dict:
    """Wait until a run started with ``TL_TEST_HOLD_AFTER_EPOCH`` holds after ``epoch``."""
    return wait_for(lambda: (run.status().get("held") or {}).get("epoch") == epoch and run.status()["held"],
                    timeout, f"{run.id} to hold after epoch {epoch} (state {run.status().get('state')})")


# Processes the tests start (training runs, servers) -----------------------------------------------
def _children() -> dict[int, int]:
    """pid -> parent pid of every live, non-zombie process on this machine (Linux /proc)."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                out[int(d.name)] = int(fields[1])
    return out


def descendants(root: int | None = None) -> set[int]:
    """Live processes started by this test process, directly or by its children."""
    parents, found, todo = _children(), set(), [root or os.getpid()]
    while todo:
        pid = todo.pop()
        kids = [c for c, parent in parents.items() if parent == pid]
        found.update(kids)
        todo += kids
    return found


def reap(pids: set[int]) -> None:
    """Kill ``pids``, and the process group of those that lead their own (a training run and its
    workers); never pytest's own group."""
    for pid in pids:
        try:
            if os.getpgid(pid) == pid != os.getpgrp():
                os.killpg(pid, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.time() + 10
    while pids & descendants() and time.time() < deadline:  # SIGKILL lands asynchronously
        for pid in pids:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def _stop_what_the_test_started():
    """Every process a test started and left running (a failed test's training run) is killed."""
    before = descendants()
    yield
    reap(descendants() - before)


@pytest.fixture(autouse=True, scope="session")
def _nothing_outlives_the_suite():
    yield
    alive = descendants()
    reap(alive)
    assert not alive, f"processes still running at the end of the suite: {sorted(alive)}"


def pytest_collection_modifyitems(config, items):
    """``TL_TEST_SHUFFLE=SEED`` runs the tests in a seeded random order (to find order dependence)."""
    seed = os.environ.get("TL_TEST_SHUFFLE")
    if seed:
        random.Random(int(seed)).shuffle(items)
