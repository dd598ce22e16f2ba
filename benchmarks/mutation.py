"""Mutation testing of the training recipe: re-apply one-line bugs, one at a time, to a copy of the
repository and check that the tests catch each one.

Run before each release (minutes per mutation on 2 CPU cores; not part of CI):

    .venv/bin/python benchmarks/mutation.py              # every mutation, its mapped tests
    .venv/bin/python benchmarks/mutation.py --only 3 6   # some of them
    .venv/bin/python benchmarks/mutation.py --tests tests/test_train.py   # other tests for all

Each mutation names the file, the exact text it replaces (the script fails loudly when the code
has moved on and the text is gone, so the list cannot rot silently) and the test files that are
meant to kill it. Prints one line per mutation and the score; ``--json`` writes the results.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = "tests/test_recipe.py"


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...] = (RECIPE,)


MUTATIONS = [
    Mutation("lite normalised with ImageNet mean/std", "tl_core/zoo.py",
             '(0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bicubic"', '(0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "bicubic"'),
    Mutation("BatchNorm statistics never frozen", "tl_core/stages.py",
             'm.bn_stats_frozen = cfg.bn_stats == "frozen"', "m.bn_stats_frozen = False"),
    Mutation("evaluation and export use the last weights", "tl_core/train.py",
             '        model.load_state_dict(best["model"])\n', "        pass\n"),
    Mutation("fine-tuning starts from the last head, not the best", "tl_core/stages.py",
             'm.load_state_dict(ckpt.load_checkpoint(self.p.run.checkpoint("best"))["model"])', "pass"),
    Mutation("resume forgets the best score", "tl_core/train.py",
             'best=tuple(last["best"]) if last else None', "best=None"),
    Mutation("one-cycle flattens the discriminative learning rates", "tl_core/stages.py",
             'max_lr=[g["lr"] for g in opt.param_groups]', "max_lr=cfg.head_lr"),
    Mutation("the same sample order every epoch", "tl_core/stages.py",
             "manual_seed(seed * 100_003 + epoch)", "manual_seed(seed * 100_003)"),
    Mutation("export parity gate disabled", "tl_core/export.py",
             'if not info["parity"]["top1_equal"] or info["parity"]["max_abs_diff"] > PARITY_TOLERANCE:',
             "if False:"),
    Mutation("duplicates across splits reported as plain duplicates", "tl_core/data.py",
             '"duplicate_across_splits" if across else "duplicate"', '"duplicate"'),
    Mutation("pid reuse: any live process counts as the run's", "tl_core/runs.py",
             'return b"tl_core" in proc.joinpath("cmdline").read_bytes()', "return True"),
    # Near relatives, from the other recipe modules.
    Mutation("discriminative learning rates reversed", "tl_core/freezing.py",
             "for g, lr, name in zip(groups, group_lrs, names)]",
             "for g, lr, name in zip(groups, reversed(group_lrs), names)]", (RECIPE, "tests/test_freezing.py")),
    Mutation("frozen groups train anyway", "tl_core/model.py",
             "module.requires_grad_(i >= n)", "module.requires_grad_(True)", (RECIPE, "tests/test_freezing.py")),
    Mutation("feature cache key ignores file times", "tl_core/features.py",
             "return [os.path.abspath(path), st.st_size, st.st_mtime_ns]",
             "return [os.path.abspath(path), st.st_size]", ("tests/test_features.py",)),
]


def copy_repo(dest: Path) -> None:
    for name in ("tl_core", "tests", "sample_data", "ui", "pages", "benchmarks"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("app.py", "pytest.ini", "requirements.txt"):
        shutil.copy(ROOT / name, dest / name)
    if (ROOT / ".streamlit").is_dir():
        shutil.copytree(ROOT / ".streamlit", dest / ".streamlit")


def apply(m: Mutation, tree: Path) -> None:
    path = tree / m.file
    text = path.read_text()
    if text.count(m.old) != 1:
        raise SystemExit(f"mutation {m.name!r}: expected the text once in {m.file}, found it "
                         f"{text.count(m.old)} times; update benchmarks/mutation.py")
    path.write_text(text.replace(m.old, m.new))


def run_tests(tree: Path, tests: tuple[str, ...], timeout: int) -> tuple[str, str, float]:
    """``(outcome, last line of pytest's output, seconds)``; outcome is "failed" (a test caught it),
    "passed", "error" (the tests did not run: collection or import failed) or "timeout"."""
    t0 = time.time()
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        out = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                             cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", f"timed out after {timeout} s", time.time() - t0
    tail = (out.stdout.strip().splitlines() or [""])[-1]
    outcome = {0: "passed", 1: "failed"}.get(out.returncode, "error")  # pytest: 2+ = interrupted, usage, internal
    return outcome, tail, time.time() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", type=int, nargs="*", help="mutation numbers (1-based)")
    ap.add_argument("--tests", nargs="*", help="run these test files for every mutation instead of its own")
    ap.add_argument("--timeout", type=int, default=1200)
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args(argv)
    chosen = [(i, m) for i, m in enumerate(MUTATIONS, 1) if not args.only or i in args.only]
    with tempfile.TemporaryDirectory(prefix="baseline-") as tmp:  # the unmutated tree must pass first
        copy_repo(Path(tmp))
        tests = tuple(args.tests) if args.tests else tuple(sorted({t for _i, m in chosen for t in m.tests}))
        outcome, tail, seconds = run_tests(Path(tmp), tests, args.timeout)
    print(f" 0 baseline {outcome} ({seconds:.0f} s): {tail}", flush=True)
    if outcome != "passed":
        print("the tests fail without any mutation: fix that first")
        return 2
    results = []
    for i, m in chosen:
        with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
            tree = Path(tmp)
            copy_repo(tree)
            apply(m, tree)
            tests = tuple(args.tests) if args.tests else m.tests
            outcome, tail, seconds = run_tests(tree, tests, args.timeout)
        killed = outcome == "failed"  # an import error or a timeout says nothing about the tests
        results.append({"n": i, "mutation": m.name, "file": m.file, "tests": list(tests), "outcome": outcome,
                        "killed": killed, "pytest": tail, "seconds": round(seconds)})
        label = {"failed": "KILLED  ", "passed": "SURVIVED"}.get(outcome, outcome.upper())
        print(f"{i:2d} {label} {m.name} ({m.file}; {seconds:.0f} s): {tail}", flush=True)
    score = sum(r["killed"] for r in results)
    print(f"score: {score}/{len(results)} killed")
    if args.json:
        Path(args.json).write_text(json.dumps({"score": score, "total": len(results), "results": results}, indent=1))
    return 0 if score == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
