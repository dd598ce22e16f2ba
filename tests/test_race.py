"""The race on planted images whose right answer is known by construction."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from tl_core.backbones import get_backbone
from tl_core.model import TransferModel
from tl_core.race import run_race


@pytest.fixture(scope="module")
def pretrained():
    spec = get_backbone(None)
    return TransferModel(spec.groups(spec.load_pretrained()), spec.feature_dim, 2), spec


@pytest.mark.slow
def test_race_stops_at_the_frozen_network_when_it_already_gets_everything_right(pretrained, image_folder):
    """Stripes, dots and checkerboards in three colours: ImageNet's frozen features separate them
    (k-NN 1.0 in test_measure), so the cheapest scenario leaves nothing to win and no costlier one
    is trained."""
    model, spec = pretrained
    race = run_race(model, spec, str(image_folder), 3)
    assert [c["scenario"] for c in race["candidates"]] == [1]
    assert race["candidates"][0]["accuracy"] == 1.0 and race["candidates"][0]["wrong"] == []
    assert race["stopped"] == [2, 3, 4] and race["predicted"] == []
    assert race["sample"]["holdout"] >= 3  # the run's validation images, never its test images


@pytest.mark.slow
def test_advise_cli_adds_the_race_and_keeps_the_measurement(image_folder, tmp_path):
    from tl_core.runs import RunDir

    out = tmp_path / "advice.json"
    job = RunDir.create(tmp_path / "runs", prefix="advice")  # as the Plan page's launcher makes it
    job.write_status(state="queued", queued_at=0)
    proc = run_cli("advise", "--data", str(image_folder), "--json", "--out", str(out), "--job-dir", str(job.path))
    assert proc.returncode == 0, proc.stderr[-1500:]
    advice = json.loads(proc.stdout.strip().splitlines()[-1])
    assert json.loads(out.read_text()) == advice == json.loads((job.path / "advice.json").read_text())
    status = job.status()  # it took a training slot and ended as a run does
    assert status["state"] == "succeeded" and status["started"] and status["finished"] >= status["started"]
    assert {"size", "similarity", "scenario", "evidence"} <= set(advice)  # the measurement's fields stay
    assert (advice["textbook"], advice["pick"], advice["cheaper"]) == (3, 1, None)
    assert advice["verdict"].startswith("The textbook says 3 for small + different; on your images the frozen "
                                        "network with a new head measured 100.0%")
    row = advice["race"]["candidates"][0]
    assert row["interval"][1] == 1.0 and row["interval"][0] < 1.0 and row["estimated_seconds"] > 0
    assert 0 < advice["cost"]["share_of_lab"] < 1


@pytest.mark.slow
def test_race_goes_on_when_the_frozen_network_is_near_chance(pretrained, mirror_folder):
    """An "F" against its mirror image: frozen ImageNet features (trained on flipped photos) leave
    a head near chance, so the race measures room to win and trains the costlier scenarios, and
    predicts scenario 4 from them instead of stopping at the cheapest."""
    model, spec = pretrained
    race = run_race(model, spec, str(mirror_folder), 2)
    first = race["candidates"][0]
    assert first["scenario"] == 1 and first["accuracy"] <= 0.9, first  # a head on frozen features: near chance
    assert [c["scenario"] for c in race["candidates"]] == [1, 2, 3] and race["stopped"] == []
    shares = [c["trainable_share"] for c in race["candidates"]]
    assert shares == sorted(shares) and shares[0] == 0.0
    assert [p["scenario"] for p in race["predicted"]] == [4] and 0 <= race["predicted"][0]["accuracy"] <= 1
