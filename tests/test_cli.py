"""``python -m tl_core``: the round trip other tools rely on, and clear errors for bad input."""

from __future__ import annotations

import json

import pytest

from conftest import COLOURS, ROOT, make_image, run_cli


def _last_json(proc):
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
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


def test_predict_imagenet_as_is_on_real_photos():
    """The bundled hand photos: ImageNet has no 'hand' class, and its classifier says 'Band Aid' (a
    plaster on a finger) for them; random or wrongly loaded weights would not."""
    photos = [str(sorted((ROOT / "sample_data" / "sign-language-digits" / str(d)).glob("*.JPG"))[0])
              for d in (0, 2, 4, 6, 8)]
    preds = _last_json(run_cli("predict", "--imagenet", *photos, "--top-k", "3", "--json"))
    assert [p["image"] for p in preds] == photos and all(len(p["top"]) == 3 for p in preds)
    for p in preds:
        probs = [t["prob"] for t in p["top"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    assert sum(p["top"][0]["label"] == "Band Aid" for p in preds) >= 4, preds


def test_advise_list_validate(tmp_path, image_folder):
    adv = _last_json(run_cli("advise", "--size", "large", "--similarity", "similar", "--json"))
    assert adv["scenario"] == 2 and 0.6 <= adv["frozen_fraction"] <= 0.8
    rows = _last_json(run_cli("list-backbones", "--json"))
    lite = next(r for r in rows if r["name"] == "efficientnet_lite0")
    assert lite["offline"] is True and lite["feature_dim"] == 1280
    rep = _last_json(run_cli("validate", str(image_folder), "--json"))
    assert rep["ok"] and rep["counts"] == {"blue": 12, "green": 12, "red": 12}


@pytest.mark.slow
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


@pytest.mark.slow
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


def test_every_training_setting_has_a_flag_with_the_configs_default(tmp_path, image_folder):
    import dataclasses

    from tl_core.backbones import DEFAULT_BACKBONE
    from tl_core.cli import build_parser, config_from_args
    from tl_core.config import TrainConfig

    args = build_parser().parse_args(["train", "--data", str(image_folder)])
    assert config_from_args(args) == TrainConfig(data=str(image_folder.resolve()))
    assert TrainConfig(data="x").backbone == DEFAULT_BACKBONE
    args = build_parser().parse_args(["train", "--data", str(image_folder), "--weight-decay", "0", "--label-smoothing",
                                      "0.2", "--val-fraction", "0.2", "--test-fraction", "0.1", "--frozen-groups", "3",
                                      "--no-cache"])
    cfg = config_from_args(args)
    assert (cfg.weight_decay, cfg.label_smoothing, cfg.val_fraction, cfg.test_fraction, cfg.frozen_groups,
            cfg.feature_cache) == (0.0, 0.2, 0.2, 0.1, 3, False)
    flags = {a.dest for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions}
    assert {f.name for f in dataclasses.fields(TrainConfig)} - {"feature_cache"} <= flags
