"""The Plan page's measured advice: race the scenarios on the chosen images (in its own process),
then show the textbook's answer beside the measured one, with accuracy, interval and time."""

from __future__ import annotations

import streamlit as st

from tl_core.advice import DEFAULT_MARGIN, advice_job, race_rows
from tl_core.errors import TLError
from tl_core.i18n import _
from tl_core.launcher import launch_advice
from ui.common import runs_dir


def _start(data: str, backbone: str) -> None:
    try:
        launch_advice(data, runs_dir(), backbone, st.session_state.get("p_margin", DEFAULT_MARGIN))
    except TLError as exc:
        st.session_state["advice_error"] = str(exc)


def show_measured_advice(w: dict, textbook: int) -> None:
    """The race's section of the Plan page, for the wizard's data folder (``textbook``: the
    scenario the answers above give)."""
    st.subheader(_("Measured on your images"))
    if not w.get("data_dir"):
        st.caption(_("Choose a data set on the Data page, then come back: a short race of the scenarios on your own "
                     "images checks the textbook's answer (about a quarter of the lab's time)."))
        return
    state, found = advice_job(runs_dir(), w["data_dir"])
    st.number_input(_("Margin: a costlier scenario must win by at least this many accuracy points"), 0.0, 10.0,
                    DEFAULT_MARGIN, 0.5, key="p_margin", disabled=state == "running")
    st.button(_("Race the scenarios on my images") if state != "done" else _("Race again"), key="p_race",
              on_click=_start, args=(w["data_dir"], w["backbone"]), disabled=state == "running")
    if err := st.session_state.pop("advice_error", None):
        st.error(err)
    _show_result(state, found, textbook, w["data_dir"])


@st.fragment(run_every=3.0)
def _poll(data: str) -> None:
    state, _found = advice_job(runs_dir(), data)
    if state != "running":
        st.rerun()
    st.info(_("Racing the scenarios on your images (a few minutes)…"))


def _show_result(state: str, found, textbook: int, data: str) -> None:
    if state == "running":
        _poll(data)
    elif state == "failed":
        log = (found / "stdout.log").read_text(errors="replace")[-600:] if (found / "stdout.log").is_file() else ""
        st.error(_("The race stopped with an error:") + f"\n\n```\n{log}\n```")
    elif state == "done":
        a = found
        left, right = st.columns(2)
        left.metric(_("Textbook (your answers)"), _("scenario {n}", n=textbook))
        right.metric(_("Measured on your images"), _("scenario {n}", n=a["pick"]),
                     delta=_("cheaper: scenario {n}", n=a["cheaper"]) if a.get("cheaper") else None,
                     delta_color="off")
        st.write(a["verdict"])
        if a.get("cheaper_text"):
            st.info(a["cheaper_text"])
        st.dataframe(race_rows(a), hide_index=True)
        cost = a["cost"]
        st.caption(_("Race on {train} + {holdout} of your images; it took {s:.0f} s, about {share:.0%} of a full lab "
                     "here (estimated {lab:.0f} s). Size and similarity measured: {size} + {similarity} → textbook "
                     "scenario {t}.", train=a["race"]["sample"]["train"], holdout=a["race"]["sample"]["holdout"],
                     s=cost["seconds"], share=cost["share_of_lab"], lab=cost["lab_estimate_seconds"],
                     size=_(a["size"]), similarity=_(a["similarity"]), t=a["textbook"]))
