"""Evaluate and Predict sections about how sure a run's answers are (temperature scaling and the
"not sure" threshold). Each section is one function the page calls."""

from __future__ import annotations

import streamlit as st

from tl_core.calibration import NOT_SURE, apply_temperature, calibrate_run, load_calibration, verdict
from tl_core.errors import TLError
from tl_core.figures import reliability_diagram
from tl_core.i18n import _
from tl_core.predict import top_k
from tl_core.runs import RunDir


def calibration_section(run: RunDir) -> None:
    """ECE before/after temperature scaling and the reliability diagram of ``run``."""
    st.subheader(_("How honest is its confidence?"))
    cal = load_calibration(run.path)
    if cal is None:
        st.caption(_("This run has no calibration yet (trained before calibration existed, or with too few "
                     "validation images to fit one)."))
        if st.button(_("Calibrate on the validation images"), key="e_calibrate"):
            with st.spinner(_("Scoring the validation and test images…")):
                try:
                    cal = calibrate_run(run.path)
                except TLError as exc:
                    st.error(str(exc))
        if cal is None:
            return
    part = cal["parts"].get("test") or cal["parts"]["val"]
    st.caption(_("A model that says \"90% sure\" should be right 9 times out of 10. Temperature scaling (one number, "
                 "T = {t:.2f}, fitted on the validation images) rescales its confidence without changing any "
                 "answer. Expected calibration error on the {part} images: {before:.3f} before, {after:.3f} after "
                 "(0 = perfectly honest).", t=cal["temperature"], part=_("test") if "test" in cal["parts"]
                 else _("validation"), before=part["ece_before"], after=part["ece_after"]))
    if part["ece_after"] > part["ece_before"]:
        st.warning(_("Here the scaling did not help on the {part} images: {n} validation images are too few to fit "
                     "it well, or they differ from the test images (compare the two accuracies above). More "
                     "validation images give a better fit.", part=_("test") if "test" in cal["parts"]
                     else _("validation"), n=cal["parts"]["val"]["n"]))
    st.plotly_chart(reliability_diagram(part), width="stretch", config={"displayModeBar": False})
    st.caption(_("Below {threshold:.0%} sure, Predict answers \"not sure\" (95% of the correct validation answers "
                 "are surer than that); on the {part} images that is {share:.0%} of the answers.",
                 threshold=cal["threshold"], part=_("test") if "test" in cal["parts"] else _("validation"),
                 share=part["not_sure_share"]))


def feature_maps_section(run: RunDir) -> None:
    """The run's test images mapped by the pretrained network and by the trained one, side by side."""
    st.subheader(_("What the network sees, before and after training"))
    key = f"e_maps_{run.id}"
    if st.button(_("Map the test images"), key="e_maps"):
        from tl_core.embedding import run_maps

        bar = st.progress(0.0, text=_("Reading the test images…"))
        try:
            st.session_state[key] = run_maps(run.path, progress=lambda done, total: bar.progress(
                min(done / max(total, 1), 1.0), text=_("Reading the test images…")))
        except TLError as exc:
            st.error(str(exc))
        bar.empty()
    maps = st.session_state.get(key)
    if maps is None:
        st.caption(_("Each test photo as a dot, placed by its features (PCA to 2-D): by the pretrained network, "
                     "and by this run's network after training."))
        return
    from tl_core.figures import embedding_scatter

    if maps["same"]:
        st.info(_("This run froze the whole pretrained network (scenario 1): training changed only the new head, "
                  "so the features, and the map, are the same as before. {summary}", summary=maps["before"]["summary"]))
        st.plotly_chart(embedding_scatter(maps["before"]), width="stretch", key="e_map_same",
                        config={"displayModeBar": False})
        return
    for col, which, title in zip(st.columns(2), ("before", "after"),
                                 (_("Before: the pretrained network"), _("After: this run's network"))):
        with col:
            st.markdown(f"**{title}**")
            st.caption(maps[which]["summary"])
            st.plotly_chart(embedding_scatter(maps[which]), width="stretch", key=f"e_map_{which}",
                            config={"displayModeBar": False})


def sure_threshold(run: RunDir | None) -> tuple[dict | None, float]:
    """The run's calibration and the threshold the user picked (default: the validated one); a
    slider on the page. ``(None, 0.0)`` when there is nothing to calibrate with."""
    cal = load_calibration(run.path) if run is not None else None
    if cal is None:
        return None, 0.0
    threshold = st.slider(_("Say \"not sure\" below this confidence"), 0.0, 1.0, float(cal["threshold"]), 0.01,
                          key=f"p_threshold_{run.id}",
                          help=_("Default from the validation images: 95% of the correct answers are surer."))
    return cal, threshold


def bundle_threshold(info: dict) -> tuple[dict | None, float]:
    """A shared bundle's temperature and "not sure" threshold (from its run, written at export)."""
    cal = info.get("calibration")
    return ({"temperature": cal["temperature"], "threshold": cal["not_sure_below"]}, cal["not_sure_below"]) if cal \
        else (None, 0.0)


def calibrated_top(predictor, image, k: int, cal: dict | None, threshold: float) -> tuple[list[dict], str | None]:
    """Top-k with the run's temperature applied, and the label to announce (None: not sure)."""
    probs = predictor.probs([image])
    if cal is not None:
        probs = apply_temperature(probs, cal["temperature"])
    top = top_k(probs, predictor.labels, k)[0]
    return top, verdict(top, threshold) if cal is not None else top[0]["label"]


def not_sure_text() -> str:
    return _(NOT_SURE)
