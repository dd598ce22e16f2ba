"""Grad-CAM points at the part of the image that carries the class."""

from __future__ import annotations

import numpy as np
from PIL import Image

from conftest import COLOURS, make_image
from tl_core.explain import grad_cam
from tl_core.predict import Predictor


def test_grad_cam_highlights_the_pattern_not_the_blank_half(trained_run):
    predictor = Predictor.from_run(trained_run.path)
    for colour in COLOURS:
        img = Image.new("RGB", (256, 256), (235, 235, 235))
        img.paste(make_image(COLOURS[colour], 4242, size=128).resize((128, 256)), (0, 0))  # pattern on the left
        cam, target = grad_cam(predictor.model, predictor.transform(img).unsqueeze(0))
        assert predictor.labels[target] == colour
        assert cam.shape == (224, 224) and 0.0 <= cam.min() and cam.max() == 1.0
        assert cam[:, :112].mean() > 2 * cam[:, 112:].mean()
    shown, target = predictor.explain(img, target=0)
    assert target == 0 and shown.size == (224, 224) and shown.mode == "RGB"
    assert not np.array_equal(np.asarray(shown), np.asarray(img.resize((224, 224))))
