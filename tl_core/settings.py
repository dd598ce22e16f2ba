"""Every ``TL_*`` setting from the environment, read when asked (never at import), so a test or a
launcher that changes the environment is obeyed. Defaults live here and in the README only.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _number(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


def runs_dir() -> Path:
    """``TL_RUNS_DIR``: where run and lab folders live (default ``./runs`` of the repository)."""
    return Path(os.environ.get("TL_RUNS_DIR") or REPO / "runs").resolve()


def data_root() -> Path:
    """``TL_DATA_ROOT``: the folder whose sub-folders users may pick (default ``./data``)."""
    return Path(os.environ.get("TL_DATA_ROOT") or REPO / "data").resolve()


def cache_root() -> Path:
    """``TL_CACHE_DIR``: feature caches, measured speeds, downloads (default ``~/.cache/tl_core``)."""
    return Path(os.environ.get("TL_CACHE_DIR") or Path.home() / ".cache" / "tl_core")


def cache_max_bytes() -> int:
    """``TL_CACHE_MAX_GB`` (10): feature and frozen-prefix cache files together, LRU beyond it."""
    return int(_number("TL_CACHE_MAX_GB", 10) * 1024**3)


def prefix_cache_max_bytes() -> int:
    """``TL_PREFIX_CACHE_MAX_GB`` (3): the largest frozen-prefix activation cache one run may hold in memory."""
    return int(_number("TL_PREFIX_CACHE_MAX_GB", 3) * 1e9)


def decode_cache_max_bytes() -> int:
    """``TL_DECODE_CACHE_MAX_GB`` (2): decoded images kept in memory for augmented epochs."""
    return int(_number("TL_DECODE_CACHE_MAX_GB", 2) * 1e9)


def max_concurrent() -> int:
    """``TL_MAX_CONCURRENT`` (1): trainings that run at once per runs folder."""
    return max(1, int(_number("TL_MAX_CONCURRENT", 1)))


def max_queued() -> int:
    """``TL_MAX_QUEUED`` (8): runs that may wait for a training slot at once."""
    return max(1, int(_number("TL_MAX_QUEUED", 8)))


def forced_device() -> str:
    """``TL_DEVICE``: ``cpu`` forces the CPU even with a GPU present; empty = automatic."""
    return os.environ.get("TL_DEVICE", "").strip().lower()


def hold_after_epoch() -> int | None:
    """``TL_TEST_HOLD_AFTER_EPOCH`` (tests only): runs hold after this epoch until released."""
    value = os.environ.get("TL_TEST_HOLD_AFTER_EPOCH")
    return int(value) if value else None
