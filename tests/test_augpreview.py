"""Augmentation preview: eight pictures from the training transform itself, different at "light"
and "strong", identical at "none", reproducible, and shown on the Model page."""

from __future__ import annotations

import numpy as np

from tl_core.augpreview import augmented_versions
from tl_core.backbones import get_backbone


def _arrays(pictures):
    return [np.asarray(p, dtype=np.int16) for p in pictures]


def test_versions_follow_the_level(image_folder):
    pre = get_backbone(None).preprocess
    path = str(next((image_folder / "red").glob("*.jpg")))
    none = _arrays(augmented_versions(path, pre, "none"))
    assert len(none) == 8 and none[0].shape == (pre.crop, pre.crop, 3)
    assert all(np.array_equal(a, none[0]) for a in none)
    for level in ("light", "strong"):
        pics = _arrays(augmented_versions(path, pre, level))
        assert len(pics) == 8 and all(a.shape == (pre.crop, pre.crop, 3) for a in pics)
        assert len({a.tobytes() for a in pics}) == 8, level  # eight different versions
        assert all(np.array_equal(a, b) for a, b in zip(pics, _arrays(augmented_versions(path, pre, level))))
    light = _arrays(augmented_versions(path, pre, "light"))
    strong = _arrays(augmented_versions(path, pre, "strong"))
    spread = lambda pics: np.std([a.mean() for a in pics])  # noqa: E731 - brightness jitter 0.4 vs 0.2
    assert spread(strong) > spread(light) > 0
    # the picture is un-normalised: colours stay in range and the red stripes stay red
    assert none[0][..., 0].mean() > none[0][..., 2].mean()


def test_model_page_shows_eight_versions(env):
    from test_app import app, page

    at = page(app(), "data")
    at.button(key="d_use_sample").click().run()
    page(at, "model")
    at.selectbox(key="m_augment").set_value("strong").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(len(element.proto.imgs) == 8 for element in at.get("image"))
    assert any("erased patch" in c.value for c in at.caption)
    at.button(key="m_aug_next").click().run()
    assert not at.exception
