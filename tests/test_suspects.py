"""Suspect labels: planted label errors rank first; exclude / keep / move are undoable, never delete
a file, and the scan, split and report honour them; the CLI gives the same list."""

from __future__ import annotations

import json
import os
import random
import shutil

import pytest

from conftest import ROOT, make_folder, run_cli
from tl_core.curation import (CURATION_FILE, load_curation, move_to_class, set_excluded, set_kept, undo_move)
from tl_core.data import scan_folder, validate
from tl_core.errors import DatasetError
from tl_core.splits import make_split
from tl_core.suspects import find_suspects, out_of_fold_probs, rank_suspects, stratified_folds

SAMPLE = ROOT / "sample_data" / "sign-language-digits"


def plant_errors(root, n: int, seed: int = 0) -> set[str]:
    """Move ``n`` random images into a wrong class folder; their new relative paths."""
    rng = random.Random(seed)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    files = sorted(f for c in classes for f in (root / c).iterdir() if f.is_file())
    planted = set()
    for f in rng.sample(files, n):
        wrong = rng.choice([c for c in classes if c != f.parent.name])
        os.rename(f, root / wrong / f.name)
        planted.add(f"{wrong}/{f.name}")
    return planted


@pytest.fixture()
def noisy(tmp_path):
    root = make_folder(tmp_path / "noisy", per_class=20)
    return root, plant_errors(root, 3)


def test_planted_label_errors_rank_first(noisy, cache_dir):
    root, planted = noisy
    result = find_suspects(root, cache_dir=str(cache_dir), top=3)
    assert {s["path"] for s in result["suspects"]} == planted
    for s in result["suspects"]:
        assert s["given"] == s["path"].split("/")[0] != s["likely"]
        assert s["p_given"] < 0.5 < s["p_likely"] and s["suspect"]
    assert result["images"] == 60 and result["flagged"] >= 3
    flagged = find_suspects(root, cache_dir=str(cache_dir))  # default: the flagged ones only
    assert planted <= {s["path"] for s in flagged["suspects"]} and flagged["feature_cache"] == "hit"


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="bundled sample data missing")
def test_most_planted_errors_in_the_sample_photos_are_flagged(tmp_path, cache_dir):
    root = tmp_path / "signs"
    shutil.copytree(SAMPLE, root)
    planted = plant_errors(root, 10)
    result = find_suspects(root, cache_dir=str(cache_dir))
    listed = [s["path"] for s in result["suspects"]]
    # 200 hand photos, 16 per class per fold: a weak head. Most planted errors are flagged, and they
    # rank high among honest errors. (8 of the 10 are flagged here, the planted ones ranking 20th at
    # worst of 48 disputed; chosen class by class, the rule until December 2026, 6 were: docs/DATA_QUALITY.md.)
    assert len(planted & set(listed)) >= 7, sorted(planted - set(listed))
    assert sum(p in planted for p in listed[:20]) >= 5, listed[:20]


def test_only_images_confidently_of_another_class_are_flagged():
    """Confident learning: an image is flagged when another class's probability reaches that class's
    own typical confidence (its mean over the images labelled with it). A hard but right image, unsure
    between two classes, stays in the data set; a mislabelled one, clearly of another class, is flagged."""
    import torch

    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1],  # typical class 0: mean p(0) = 0.78
                          [0.45, 0.55],  # labelled 0, unsure: p(1) = 0.55 is below class 1's typical 0.72
                          [0.1, 0.9], [0.1, 0.9], [0.05, 0.95],
                          [0.92, 0.08]])  # labelled 1 but clearly a 0: p(0) = 0.92 >= 0.78
    _order, flag = rank_suspects(probs, labels)
    assert flag.tolist() == [False] * 7 + [True]


def test_a_flagged_image_is_one_another_class_wins_and_a_class_is_never_flagged_whole():
    """The confident joint says how many images are suspects; only images some other
    class wins are picked (an image the model agrees with is no suspect, whatever its confidence)."""
    import torch

    probs = torch.tensor([[0.45, 0.55, 0.0],  # labelled 0, class 1 wins: the suspect
                          [0.40, 0.30, 0.30],  # labelled 0, least self-confident, but 0 still wins
                          [0.95, 0.05, 0.0], [0.45, 0.55, 0.0], [0.5, 0.5, 0.0]])
    _order, flag = rank_suspects(probs, [0, 0, 0, 1, 1])
    assert flag.tolist() == [True, False, False, False, False]
    _order, flag = rank_suspects(torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]]), [1, 1, 0])
    assert flag.tolist() == [True, False, False]  # all disputed: one image of each class stays


def test_out_of_fold_heads_never_see_the_image_they_score():
    # Two identical copies of random features with opposite labels: a head that saw the image would
    # be unsure; out of fold, each copy is judged by its twin in another fold only if folds differ.
    labels = [0] * 10 + [1] * 10
    folds = stratified_folds(labels, k=5)
    assert sorted(folds[:10].tolist()) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    import torch

    x = torch.cat([torch.full((10, 4), -1.0), torch.full((10, 4), 1.0)]) + 0.1 * torch.randn(20, 4)
    probs = out_of_fold_probs(x, labels, 2)
    assert (probs.argmax(1) == torch.tensor(labels)).all()
    flipped = labels.copy()
    flipped[3] = 1
    order, flag = rank_suspects(out_of_fold_probs(x, flipped, 2), flipped)
    assert order[0] == 3 and flag[3] and flag.sum() == 1
    with pytest.raises(DatasetError, match="at least 10 images"):
        out_of_fold_probs(x[:6], labels[:6], 2)


def test_exclude_is_honoured_by_scan_split_and_report_and_undoable(noisy, cache_dir):
    root, planted = noisy
    before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg"))
    set_excluded(root, [str(root / p) for p in planted])
    assert set(json.loads((root / CURATION_FILE).read_text())["excluded"]) == planted
    report, clean = validate(scan_folder(root))
    used = {os.path.relpath(it.path, root) for it in clean.items}
    assert not used & planted and len(used) == 57
    split = make_split(clean)
    assert not {os.path.relpath(it.path, root) for part in split.values() for it in part} & planted
    issue = next(i for i in report.issues if i.code == "excluded")
    assert "3 image(s) excluded" in issue.message and len(issue.paths) == 3
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg")) == before  # nothing deleted
    set_excluded(root, [next(iter(planted))], excluded=False)  # undo one (a relative path works too)
    assert len(scan_folder(root).items) == 58
    listed = {s["path"] for s in find_suspects(root, cache_dir=str(cache_dir), top=60)["suspects"]}
    assert next(iter(planted)) in listed and not listed & (planted - {next(iter(planted))})


def test_keep_hides_a_suspect_and_move_to_class_is_undoable(noisy, cache_dir):
    root, planted = noisy
    first = sorted(planted)[0]
    before = find_suspects(root, cache_dir=str(cache_dir))
    assert first in {s["path"] for s in before["suspects"]}
    set_kept(root, [first])
    assert first not in {s["path"] for s in find_suspects(root, cache_dir=str(cache_dir), top=3)["suspects"]}
    after = find_suspects(root, cache_dir=str(cache_dir))  # "N images look mislabelled" counts what is listed
    assert after["flagged"] == len(after["suspects"]) == before["flagged"] - 1
    set_kept(root, [first], kept=False)
    row = next(s for s in find_suspects(root, cache_dir=str(cache_dir), top=3)["suspects"] if s["path"] == first)
    classes = scan_folder(root).classes
    new = move_to_class(root, first, row["likely"], classes)
    assert new == root / row["likely"] / first.split("/")[1] and new.is_file() and not (root / first).exists()
    assert load_curation(root).moves == [{"from": first, "to": f"{row['likely']}/{new.name}"}]
    assert undo_move(root, new) == root / first and (root / first).is_file() and not new.exists()
    assert load_curation(root).moves == []


def test_curation_refuses_hostile_or_stale_input(noisy, tmp_path):
    root, planted = noisy
    classes = scan_folder(root).classes
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes(b"x")
    with pytest.raises(DatasetError, match="not inside the data set"):
        set_excluded(root, [str(outside)])
    with pytest.raises(DatasetError, match="not inside the data set"):
        move_to_class(root, "../elsewhere.jpg", "red", classes)
    with pytest.raises(DatasetError, match="unknown class '../x'"):
        move_to_class(root, sorted(planted)[0], "../x", classes)
    with pytest.raises(DatasetError, match="no longer exists"):
        move_to_class(root, "red/gone.jpg", "blue", classes)
    with pytest.raises(DatasetError, match="nothing to undo"):
        undo_move(root, sorted(planted)[0])
    (root / CURATION_FILE).write_text("{not json")
    assert load_curation(root).excluded == [] and len(scan_folder(root).items) == 60  # damaged: ignored


def test_cli_suspects_json_and_bad_input(noisy, cache_dir):
    root, planted = noisy
    r = run_cli("suspects", "--data", str(root), "--top", "3", "--cache-dir", str(cache_dir), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert {s["path"] for s in out["suspects"]} == planted
    r = run_cli("suspects", "--data", str(root / "missing"))
    assert r.returncode == 2 and "data folder not found" in r.stderr
    r = run_cli("suspects", "--data", str(root), "--top", "0")
    assert r.returncode == 2 and "--top must be at least 1" in r.stderr
