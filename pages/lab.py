"""Scenario lab: train all four scenarios on the chosen data with one short budget and compare."""

from pathlib import Path

import streamlit as st

from tl_core.errors import TLError
from tl_core.figures import describe_lab, lab_chart
from tl_core.freezing import SCENARIOS
from tl_core.glossary import explain
from tl_core.i18n import _
from tl_core.lab import lab_progress, read_lab, summarize_lab
from tl_core.launcher import is_live, launch_lab, stop
from tl_core.paths import run_path
from tl_core.runs import RunDir, is_lab, run_state, stage_label, waiting_behind
from ui.common import runs_dir, wizard

w = wizard()
st.title(_("Scenario lab"))
st.write(_("Is the textbook rule right for **your** images? The lab trains all four scenarios on the same data "
           "with the same short budget (scenario 1 on cached features; 2-4 a short head warm-up, then "
           "a few fine-tuning epochs) and puts accuracy, trainable parameters and time side by side, next to the "
           "scenario the advisor measured. Each scenario is a normal run you can open on the Runs page."))


def current_lab() -> RunDir | None:
    path = run_path(runs_dir(), st.query_params.get("lab") or st.session_state.get("lab_id"))
    return RunDir(path) if path is not None and is_lab(path) else None


def start() -> None:
    lab = current_lab()
    if lab is not None and is_live(lab):
        return
    try:
        lab = launch_lab(w["data_dir"], runs_dir(), w["backbone"], st.session_state.get("l_epochs", 5),
                         repeats=st.session_state.get("l_repeats", 1))
    except TLError as exc:
        st.session_state["lab_error"] = str(exc)
        return
    st.session_state["lab_id"] = lab.id
    st.query_params["lab"] = lab.id


def request_stop() -> None:
    lab = current_lab()
    if lab is not None:
        stop(lab, grace=0.5)


lab = current_lab()
live = lab is not None and is_live(lab)
if not w["data_dir"] and lab is None:
    st.info(_("Choose a data set on the Data page first."))
    st.page_link("pages/data.py", label=_("Go to Data"), icon=":material/folder_open:")
    st.stop()
st.number_input(_("Fine-tuning epochs for scenarios 2-4 (the same budget for each)"), 1, 50, 5, key="l_epochs",
                disabled=live)
st.number_input(_("Seeds per scenario (each its own split; 2-3 show how much the result moves)"), 1, 3, 1,
                key="l_repeats", disabled=live)
c1, c2 = st.columns(2)
c1.button(_("Run the four scenarios"), type="primary", on_click=start, disabled=live or not w["data_dir"],
          key="l_start")
c2.button(_("Stop the lab"), on_click=request_stop, disabled=not live, key="l_stop")
if err := st.session_state.pop("lab_error", None):
    st.error(err)
if lab is None:
    st.caption(_("Data: `{data}` · backbone {backbone}", data=Path(w["data_dir"]).name, backbone=w["backbone"]))
    st.stop()


@st.fragment(run_every=2.0 if live else None)
def show_lab() -> None:
    state, info = run_state(lab), read_lab(lab.path)
    status = lab.status()
    rows = info.get("scenarios", [])
    done = [s for s in rows if not s.get("seed")]  # the chart compares one split
    if state == "queued" and waiting_behind(lab):
        st.info(_("Waiting for a free training slot (another run is training on this server)."))
    elif state == "queued":
        st.progress(0.0, text=_("Starting (loading PyTorch and the pretrained network)…"))
    elif state == "running":  # one bar: each scenario weighted by its expected cost
        cur = info.get("current")
        run_status = RunDir(cur["run_dir"]).status() if cur else {}
        bar = lab_progress(info, float(run_status.get("progress") or 0))
        if "measurement" not in info:
            st.progress(bar, text=_("Measuring size and similarity to ImageNet…"))
        else:
            st.progress(bar, text=_("Scenario {n} of 4 · {stage}", n=cur["scenario"],
                                    stage=stage_label(run_status.get("stage"))) if cur else _("Between scenarios…"))
    elif state == "failed":
        st.error(_("The lab failed: {error}", error=status.get("error") or _("unknown reason")))
    elif state == "interrupted":
        st.warning(_("The lab process ended before finishing (killed or the server restarted). "
                     "Finished scenarios are kept below; start the lab again for the rest."))
    elif state == "stopped":
        st.info(_("Stopped after {n} scenario(s).", n=len(rows)))
    if info.get("advised") and "measurement" in info:
        m = info["measurement"]
        e = m["evidence"]
        similar = _("similar to ImageNet") if m["similarity"] == "similar" else _("different from ImageNet")
        st.markdown(_("**Advisor (measured): scenario {n}**: {size} data set ({per} images per class), {similar} "
                   "(ImageNet confidence {conf:.0%}, nearest-neighbour test {knn:.0%}).",
                   n=info["advised"], size=_(m["size"]), per=e["median_images_per_class"], similar=similar,
                   conf=e["imagenet_mean_top_probability"], knn=e["knn_accuracy_frozen_features"]),
                 help=explain("imagenet_confidence") + "\n\n" + explain("knn"))
    if done:
        st.plotly_chart(lab_chart(done, info.get("advised")), width="stretch", key=f"lab-{len(done)}",
                        config={"displayModeBar": False})
        st.caption(describe_lab(done, info.get("advised")) + " " + summarize_lab(info))
        st.dataframe([{_("scenario"): f"{s['scenario']} · {_(SCENARIOS[s['scenario']].title)}"
                       + (_(" (advised)") if s["scenario"] == info.get("advised") else ""),
                       _("test accuracy"): f"{s['test_accuracy']:.1%}" if s["test_accuracy"] is not None else "n/a",
                       _("trainable parameters"): f"{s['trainable_params']:,}",
                       _("frozen"): f"{s['frozen_fraction']:.0%}", _("seconds"): round(s["seconds"]),
                       _("seed"): s.get("seed", 0), _("run"): s["run_dir"].rsplit("/", 1)[-1]} for s in rows],
                     width="stretch", hide_index=True)
    if state == "succeeded":
        st.success(_("The lab finished in {seconds:.0f} s.", seconds=info.get("seconds", 0)))
    if live and not is_live(lab):
        st.rerun()


show_lab()
