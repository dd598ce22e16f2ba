"""The suite must fit on a small disk: a whole run once wrote 8.5 GB of models, checkpoints and exports
into pytest's temporary folders and kept all of it, and CI ran out of space part-way (stop 28). The
project's pytest.ini removes what a passing test wrote and keeps a failing test's folder to look at."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT

INNER = '''
def test_passes(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"x" * 1_000_000)

def test_fails(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"x" * 1_000_000)
    assert False, "kept to look at"
'''


def test_a_passing_tests_files_are_removed_and_a_failing_tests_kept(tmp_path):
    (tmp_path / "test_inner.py").write_text(INNER)
    base = tmp_path / "basetemp"
    done = subprocess.run([sys.executable, "-m", "pytest", "-c", str(ROOT / "pytest.ini"), "--rootdir", str(tmp_path),
                           "--basetemp", str(base), "-p", "no:cacheprovider", "-q", str(tmp_path / "test_inner.py")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"})
    assert "1 failed, 1 passed" in done.stdout, done.stdout + done.stderr
    left = sorted(p.parent.name for p in base.rglob("model.bin"))
    assert left == ["test_fails0"], left
