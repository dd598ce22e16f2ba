"""Shared fixtures: tiny generated image folders (no download, no ../shared needed)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
# Real data sets next to the checkout on the development machines, never in the repository or in CI
# (unknown licences): tests that read them skip when the folder is absent.
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"
PYTHON = sys.executable
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 220)}


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
