"""Step 4: train in a separate process, with live curves, progress, ETA and a Stop button."""

import time
from pathlib import Path

import streamlit as st

from tl_core.errors import TLError
from tl_core.diagnose import diagnose, summarize
from tl_core.figures import training_curves
from tl_core.i18n import _
from tl_core.launcher import is_live, launch
from tl_core.runs import run_state, stage_label, waiting_behind
from tl_core.warm import prewarm
from ui.common import (config_from_wizard, current_run, follow_goto, gpus, next_step, runs_dir, scenario,
                       set_current_run, show_outcome, wizard)

w = wizard()
follow_goto()
st.title(_("4 · Train"))
prewarm(runs_dir=runs_dir())  # a training process loads torch and the backbone now, so the click trains at once


def start() -> None:
    # on_click runs before the page body, so the button below is already disabled on this rerun:
    # a fast double click cannot start two runs.
    run = current_run()
    if run is not None and is_live(run):
        return
    try:
        cfg, est = config_from_wizard(w), w.get("estimate") or {}
        run = launch(cfg, runs_dir(), processes=st.session_state.get("t_procs", 1),
                     estimated_seconds=est.get("seconds") if est.get("config") == cfg else None)
        set_current_run(run.id)
    except TLError as exc:
        st.session_state["train_error"] = str(exc)


def request_stop() -> None:
    run = current_run()
    if run is not None:
        run.request_stop()


run = current_run()
live = run is not None and is_live(run)
if not w["data_dir"] and not run:
    st.info(_("Choose a data set on the Data page first."))
    st.page_link("pages/data.py", label=_("Go to Data"), icon=":material/folder_open:")
    st.stop()

if gpus() > 1:
    st.number_input(_("Processes per machine (one per GPU, DistributedDataParallel)"), 1, gpus(), gpus(),
                    key="t_procs", disabled=live)
c1, c2 = st.columns(2)
ready = w["data_dir"] and w.get("data_ready") is not False
c1.button(_("Start training"), type="primary", on_click=start, disabled=live or not ready, key="t_start")
c2.button(_("Stop"), on_click=request_stop, disabled=not live, key="t_stop")
if w["data_dir"] and not ready and not live:
    st.warning(_("The chosen data set has errors (see the Data page): fix them there before training."))
if err := st.session_state.pop("train_error", None):
    st.error(err)
if run is None:
    st.caption(_("Data: `{data}` · backbone {backbone} · scenario {n}", data=Path(w["data_dir"]).name, backbone=w["backbone"],
                 n=scenario()))
    st.stop()


def _progress(state: str, status: dict) -> None:
    """One bar for the whole run: it moves with the work and never goes back between stages."""
    if state == "queued" and waiting_behind(run):
        st.info(_("Waiting for a free training slot: this server trains one model at a time "
                  "(TL_MAX_CONCURRENT). It starts by itself when the run before it ends."))
        return
    stage = status.get("stage")
    bar = min(float(status.get("progress") or 0), 1.0)
    if state == "queued" or stage in (None, "preparing"):  # importing PyTorch takes seconds
        text = _("Starting (loading PyTorch and the pretrained network)…")
    elif stage in ("features", "prefix"):
        text = _("Computing what the frozen layers see, once: {detail}", detail=status.get("detail", ""))
    else:
        text = _("{stage}: epoch {epoch} of {epochs}", stage=stage_label(stage), epoch=status.get("epoch"),
                 epochs=status.get("stage_epochs"))
        if status.get("images_per_s"):
            text += _(" · {ips:.0f} images/s", ips=status["images_per_s"])
    if status.get("eta_seconds"):
        text += _(" · about {eta:.0f} s left", eta=status["eta_seconds"])
    st.progress(bar, text=text)


def _result(state: str, status: dict) -> None:
    res = status.get("result") or {}
    if not res:
        return
    took = _("{seconds:.0f} s", seconds=res["seconds"]) + (
        _(" (estimated {est:.0f} s)", est=status["estimated_seconds"]) if status.get("estimated_seconds") else "")
    if state == "stopped":
        st.caption(_("Stopped after {n} epoch(s), {took}; the best model so far is kept.", n=res["epochs_run"],
                     took=took))
    else:
        st.caption(_("Done in {took}: test accuracy {test}, validation accuracy {val}.", took=took,
                     test=f"{res['test_accuracy']:.0%}" if res.get("test_accuracy") is not None else "–",
                     val=f"{res['val_accuracy']:.0%}" if res.get("val_accuracy") is not None else "–"))


@st.fragment(run_every=1.5 if live else None)
def show_run() -> None:
    state = run_state(run)
    status = run.status()
    st.write(_("Run `{id}`: **{state}**", id=run.id, state=_(state)))
    verdict = None
    if state in ("queued", "running"):
        _progress(state, status)
    elif state in ("succeeded", "stopped"):
        verdict = show_outcome(run, "train")  # the outcome first, then how it got there
        _result(state, status)
    records = run.metrics()
    if records:
        st.plotly_chart(training_curves(records), width="stretch", key=f"curves-{len(records)}",
                        config={"displayModeBar": False})
        st.caption(summarize(records))
        if state in ("succeeded", "stopped"):
            d = diagnose(records)
            with st.expander(_("Details: what the curves say")):
                st.write(_("**{verdict}**: {why}.", verdict=_(d["verdict"]).capitalize(), why=d["why"]))
                if d["advice"] and (verdict is None or verdict.level != "good"):
                    st.markdown(_("Settings that may help (on the Model page):") + "".join(
                        f"\n- {a}" for a in d["advice"]))
    if state == "failed":
        st.error(_("Training failed: {error}", error=status.get("error") or _("unknown reason")))
        if run.log_file.exists():
            st.code("\n".join(run.log_file.read_text(errors="replace").splitlines()[-25:]))
    elif state == "interrupted":
        st.warning(_("The training process ended without finishing (killed or the machine restarted). "
                     "Resume continues from the last saved epoch."))
    if live and not is_live(run):
        time.sleep(0.2)
        st.rerun()  # one full rerun when the run ends, to re-enable the buttons


show_run()
if run_state(run) == "interrupted" and st.button(_("Resume"), key="t_resume"):
    from tl_core.launcher import resume

    try:
        resume(run)
        st.rerun()
    except TLError as exc:
        st.error(str(exc))
next_step(_("evaluate"), "pages/evaluate.py")
