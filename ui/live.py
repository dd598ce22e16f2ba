"""Live prediction on the camera: each frame the camera sends is classified in a widget callback
(before the fragment redraws), and the answer goes back with the frame's number; the camera sends
its next frame only then, so frames are skipped, never queued."""

from __future__ import annotations

from functools import partial

import streamlit as st

from tl_core.capture import decode_frame
from tl_core.errors import TLError
from tl_core.i18n import _
from ui.camera import camera
from ui.run_tools import calibrated_top


def _frame(key: str) -> dict | None:
    state = st.session_state.get(key)
    value = state.get("frame") if isinstance(state, dict) else getattr(state, "frame", None)
    return value if isinstance(value, dict) else None


def _classify(predictor, k: int, key: str, cal: dict | None = None, threshold: float = 0.0) -> None:
    frame = _frame(key)
    if frame is None:
        return
    try:
        top, said = calibrated_top(predictor, decode_frame(frame.get("image")), k, cal, threshold)
        # Below the run's "not sure" threshold the answer says so, as on the Upload and Webcam tabs;
        # the bars keep the class names.
        verdict = said if said is not None else _("not sure (best guess: {label})", label=top[0]["label"])
    except TLError:
        top, verdict = [], ""  # a damaged frame still gets its answer, or the camera would wait for it
    st.session_state[f"{key}.result"] = {"seq": frame.get("seq"), "verdict": verdict,
                                        "top": [{"label": t["label"], "prob": float(t["prob"])} for t in top]}


@st.fragment
def live_predict(predictor, k: int, key: str = "p_live", cal: dict | None = None, threshold: float = 0.0) -> None:
    """The live camera with the top-``k`` bars beside it, updated as answers come."""
    st.caption(_("Press Start and show something to the camera: the bars follow what it sees. The frames are "
                 "classified on this server and not kept."))
    camera(key, {"mode": "live", "side": 256, "result": st.session_state.get(f"{key}.result"), "text": {
        "start": _("Start"), "stop": _("Stop"), "hold": "", "recording": "", "photos": "",
        "no_camera": _("No camera available: allow the camera in the browser, or use the Upload tab."),
        "camera": _("Camera"), "stats": _("{rate} predictions/s · {ms} ms from frame to bars", rate="{rate}",
                                          ms="{ms}")}}, on_frame_change=partial(_classify, predictor, k, key, cal, threshold))
