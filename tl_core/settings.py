"""Every ``TL_*`` setting from the environment, read when asked (never at import), so a test or a
launcher that changes the environment is obeyed. Defaults live here and in the README only.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _number(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


def static_root() -> Path:
    """The folder Streamlit serves at ``/app/static/`` (``static/`` of the repository;
    ``TL_STATIC_DIR`` moves it, for tests)."""
    return Path(os.environ.get("TL_STATIC_DIR") or REPO / "static").resolve()


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


# Classroom mode (``python -m tl_core.classroom``, ``scripts/start.sh --classroom``) ---------------
def classroom() -> bool:
    """``TL_CLASSROOM`` (off): a shared server; every visitor works in their own workspace."""
    return os.environ.get("TL_CLASSROOM", "").strip().lower() in ("1", "true", "yes", "on")


def classroom_dir() -> Path:
    """``TL_CLASSROOM_DIR``: the certificate and the workspaces (default ``./classroom``)."""
    return Path(os.environ.get("TL_CLASSROOM_DIR") or REPO / "classroom").resolve()


def join_url() -> str:
    """``TL_JOIN_URL``: the address students open (set by the classroom launcher)."""
    return os.environ.get("TL_JOIN_URL", "")


def join_code() -> str:
    """``TL_JOIN_CODE``: the code a new workspace needs (set by the classroom launcher)."""
    return os.environ.get("TL_JOIN_CODE", "")


def teacher_pin() -> str:
    """``TL_TEACHER_PIN``: opens the teacher view (printed by the classroom launcher)."""
    return os.environ.get("TL_TEACHER_PIN", "")


def workspace_quota_bytes() -> int:
    """``TL_WORKSPACE_QUOTA_MB`` (300): uploads and captures one workspace may keep."""
    return int(_number("TL_WORKSPACE_QUOTA_MB", 300) * 1e6)


def queue_root() -> Path | None:
    """``TL_QUEUE_ROOT``: one training queue for every ``*/runs`` folder under it (the classroom's
    workspaces share the machine); unset: each runs folder has its own queue."""
    value = os.environ.get("TL_QUEUE_ROOT")
    return Path(value).resolve() if value else None


def max_queued_per_workspace() -> int:
    """``TL_MAX_QUEUED_PER_WORKSPACE`` (1): runs one workspace may have waiting under ``TL_QUEUE_ROOT``."""
    return max(1, int(_number("TL_MAX_QUEUED_PER_WORKSPACE", 1)))


def server_threads() -> int:
    """``TL_SERVER_THREADS`` (1): PyTorch threads of the web server's own predictions (live camera,
    uploads). One image at a time gains little from two threads on a quiet machine, and on a busy
    one OpenMP workers waiting for a core made each frame 5-25x slower here (32 ms vs 280-1340 ms)."""
    return max(1, int(_number("TL_SERVER_THREADS", 1)))


def forced_precision() -> str:
    """``TL_PRECISION``: ``fp32`` or ``bf16`` forces the numerics of new runs; empty = measured here."""
    value = os.environ.get("TL_PRECISION", "").strip().lower()
    return value if value in ("fp32", "bf16") else ""


def forced_engine() -> str:
    """``TL_ENGINE``: ``torch`` or ``openvino`` forces what runs the frozen part of new runs; empty = measured."""
    value = os.environ.get("TL_ENGINE", "").strip().lower()
    return value if value in ("torch", "openvino") else ""


def warm_idle_seconds() -> float:
    """``TL_WARM_IDLE`` (600): seconds a warm training worker waits for a job before it exits (0 = no warm worker)."""
    return _number("TL_WARM_IDLE", 600)
