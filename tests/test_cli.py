"""``python -m tl_core``: the round trip other tools rely on, and clear errors for bad input."""

from __future__ import annotations

import json

from conftest import make_image, run_cli, COLOURS


def _last_json(proc):
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_train_evaluate_predict_round_trip(tmp_path, image_folder, cache_dir):
    runs = tmp_path / "runs"
    out = _last_json(run_cli("train", "--data", str(image_folder), "--scenario", "1", "--runs-dir", str(runs),
                             "--cache-dir", str(cache_dir), "--json"))
    for key in ("run_dir", "backbone", "scenario", "frozen_fraction", "val_accuracy", "test_accuracy", "epochs_run",
                "seconds", "feature_cache"):
        assert key in out
    assert out["backbone"] == "efficientnet_lite0" and out["scenario"] == 1 and out["feature_cache"] == "miss"
    assert out["test_accuracy"] >= 0.8
    run_dir = out["run_dir"]

    ev = _last_json(run_cli("evaluate", run_dir, "--json"))
    assert ev["accuracy"] == out["test_accuracy"] and len(ev["confusion"]) == 3

    fresh = tmp_path / "fresh"
    for name in COLOURS:
        (fresh / name).mkdir(parents=True)
        for i in range(3):
            make_image(COLOURS[name], 5000 + i).save(fresh / name / f"{i}.png")
    ev2 = _last_json(run_cli("evaluate", run_dir, "--data", str(fresh), "--json"))
    assert ev2["n"] == 9 and ev2["accuracy"] >= 0.6

    img = fresh / "red" / "0.png"
    preds = _last_json(run_cli("predict", run_dir, str(img), str(fresh / "blue" / "1.png"), "--top-k", "2", "--json"))
    assert [p["image"] for p in preds] == [str(img), str(fresh / "blue" / "1.png")]
    assert len(preds[0]["top"]) == 2 and preds[0]["top"][0]["label"] == "red"
    assert preds[1]["top"][0]["label"] == "blue"
    assert preds[0]["top"][0]["prob"] >= preds[0]["top"][1]["prob"]

    status = _last_json(run_cli("status", run_dir, "--json"))
    assert status["state"] == "succeeded"

    again = _last_json(run_cli("train", "--data", str(image_folder), "--scenario", "1", "--head-hidden", "0",
                               "--runs-dir", str(runs), "--cache-dir", str(cache_dir), "--json"))
    assert again["feature_cache"] == "hit"


def test_predict_imagenet_as_is(tmp_path):
    img = tmp_path / "x.jpg"
    make_image(COLOURS["blue"], 1, size=120).save(img)
    preds = _last_json(run_cli("predict", "--imagenet", str(img), "--top-k", "3", "--json"))
    assert len(preds) == 1 and len(preds[0]["top"]) == 3
    probs = [t["prob"] for t in preds[0]["top"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    assert all(isinstance(t["label"], str) and t["label"] for t in preds[0]["top"])


def test_advise_list_validate(tmp_path, image_folder):
    adv = _last_json(run_cli("advise", "--size", "large", "--similarity", "similar", "--json"))
    assert adv["scenario"] == 2 and 0.6 <= adv["frozen_fraction"] <= 0.8
    rows = _last_json(run_cli("list-backbones", "--json"))
    lite = next(r for r in rows if r["name"] == "efficientnet_lite0")
    assert lite["offline"] is True and lite["feature_dim"] == 1280
    rep = _last_json(run_cli("validate", str(image_folder), "--json"))
    assert rep["ok"] and rep["counts"] == {"blue": 12, "green": 12, "red": 12}


def test_bad_input_is_one_clear_line_and_nonzero(tmp_path, image_folder):
    cases = [
        (("train", "--data", str(tmp_path / "missing")), "data folder not found"),
        (("train", "--data", str(image_folder), "--backbone", "resnet19"), "unknown backbone"),
        (("train", "--data", str(image_folder), "--freeze", "1.5"), "frozen fraction"),
        (("predict", str(tmp_path), str(tmp_path / "a.jpg")), "not a run directory"),
        (("evaluate", str(tmp_path)), "not a run directory"),
        (("validate", str(tmp_path / "missing")), "not found"),
    ]
    for args, expected in cases:
        proc = run_cli(*args, "--runs-dir", str(tmp_path / "runs")) if args[0] == "train" else run_cli(*args)
        assert proc.returncode != 0, args
        lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and expected in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr


def test_resume_after_kill_via_cli(tmp_path, image_folder, cache_dir):
    """A run whose process died is reported as interrupted and resumes to completion."""
    from tl_core.runs import RunDir, run_state

    out = _last_json(run_cli("train", "--data", str(image_folder), "--scenario", "1", "--epochs", "4",
                             "--runs-dir", str(tmp_path / "runs"), "--cache-dir", str(cache_dir), "--json"))
    run = RunDir(out["run_dir"])
    run.write_status(state="running", pid=999_999_999)  # as if the trainer had been SIGKILLed
    assert run_state(run) == "interrupted"
    assert _last_json(run_cli("status", str(run.path), "--json"))["state"] == "interrupted"
    resumed = _last_json(run_cli("train", "--resume", str(run.path), "--json"))
    assert resumed["epochs_run"] == 0 and resumed["test_accuracy"] == out["test_accuracy"]
    assert run_state(run) == "succeeded"
