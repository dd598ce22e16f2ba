"""The measured advice against the full lab, on the shared data sets (``run.py --advice``).

For each data set: the advice (measurement + race) with its wall time; with ``--with-lab`` also
the full lab on the same data, then the advice's pick against the lab's best (points, paired test
on the lab's test photos) and the advice's cost as a share of the lab's. Every number is measured
now; nothing is copied from earlier runs. The lab takes 12-20 minutes per data set on 2 cores.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from tl_core.advice import advise_measured
from tl_core.stats import paired

SETS = {  # name -> (data, test data or None)
    "sign-language-digits": ("sign-language-digits", None),
    "cats-vs-dogs": ("cats-vs-dogs/train", "cats-vs-dogs/validation"),
}


def compare(advice: dict, lab: dict) -> dict:
    """The advice's pick against the lab's best on the lab's own test photos."""
    rows = {s["scenario"]: s for s in lab["scenarios"]}
    best = max(rows.values(), key=lambda s: (s["test_accuracy"], -s["seconds"]))
    mine = rows[advice["pick"]]
    cmp = paired(best["test_wrong"], mine["test_wrong"])
    return {"lab": {k: {"test_accuracy": s["test_accuracy"], "seconds": s["seconds"], "test_images": s["test_images"]}
                    for k, s in rows.items()},
            "lab_best": best["scenario"], "pick_test_accuracy": mine["test_accuracy"],
            "gap_points": round(100 * (best["test_accuracy"] - mine["test_accuracy"]), 2),
            "paired_p": round(cmp["p"], 4), "measurably_worse": cmp["measurable"] and mine is not best,
            "lab_seconds": lab["seconds"], "advice_share_of_lab": round(advice["cost"]["seconds"] / lab["seconds"], 3)}


def run(shared: Path, with_lab: bool, log=print) -> dict:
    from tl_core.lab import run_lab

    out = {}
    for name, (data, test) in SETS.items():
        if not (shared / data).is_dir():
            log(f"advice: {shared / data} missing, skipped")
            continue
        t0 = time.time()
        advice = advise_measured(str(shared / data))
        log(f"advice {name}: pick {advice['pick']} (textbook {advice['textbook']}) in {time.time() - t0:.0f} s")
        row = {"advice": {k: advice[k] for k in ("size", "similarity", "textbook", "pick", "pick_is_prediction",
                                                  "cheaper", "verdict", "cost")},
               "race": advice["race"]}
        if with_lab:
            with tempfile.TemporaryDirectory(prefix="tl-lab-") as tmp:
                lab = run_lab(str(shared / data), str(shared / test) if test else None, tmp)
            row["versus_lab"] = compare(advice, lab)
            log(f"lab {name}: {json.dumps(row['versus_lab'])}")
        out[name] = row
    return out


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]), "--with-lab" in sys.argv), indent=1))
