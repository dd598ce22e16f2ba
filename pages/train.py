"""Step 4: train in a separate process, with live curves, progress, ETA and a Stop button."""

import time

import streamlit as st

from tl_core.config import TrainConfig
from tl_core.errors import TLError
from tl_core.diagnose import diagnose, summarize
from tl_core.figures import training_curves
from tl_core.launcher import is_live, launch
from tl_core.runs import run_state
from ui.common import current_run, gpus, next_step, runs_dir, scenario, set_current_run, wizard

w = wizard()
st.title("4 · Train")


def config_from_wizard() -> TrainConfig:
    return TrainConfig(data=w["data_dir"], backbone=w["backbone"], scenario=scenario(),
                       frozen_fraction=w["frozen_fraction"], epochs=w["epochs"], head_hidden=w["head_hidden"],
                       head_lr=w["head_lr"], augment=None if w["augment"] == "auto" else w["augment"])


def start() -> None:
    # on_click runs before the page body, so the button below is already disabled on this rerun:
    # a fast double click cannot start two runs.
    run = current_run()
    if run is not None and is_live(run):
        return
    try:
        run = launch(config_from_wizard(), runs_dir(), processes=st.session_state.get("t_procs", 1))
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
    st.info("Choose a data set on the Data page first.")
    st.page_link("pages/data.py", label="Go to Data", icon=":material/folder_open:")
    st.stop()

if gpus() > 1:
    st.number_input("Processes per machine (one per GPU, DistributedDataParallel)", 1, gpus(), gpus(),
                    key="t_procs", disabled=live)
c1, c2 = st.columns(2)
c1.button("Start training", type="primary", on_click=start, disabled=live or not w["data_dir"], key="t_start")
c2.button("Stop", on_click=request_stop, disabled=not live, key="t_stop")
if err := st.session_state.pop("train_error", None):
    st.error(err)
if run is None:
    st.caption(f"Data: `{w['data_dir']}` · backbone {w['backbone']} · scenario {scenario()}")
    st.stop()


@st.fragment(run_every=1.5 if live else None)
def show_run() -> None:
    state = run_state(run)
    status = run.status()
    st.write(f"Run `{run.id}`: **{state}**" + (f" · {status.get('stage')}" if state == "running" else ""))
    if state == "queued":
        st.info("Waiting for a free training slot: this server trains one model at a time "
                "(TL_MAX_CONCURRENT). It starts by itself when the run before it ends.")
    if state == "running":
        if status.get("stage") in (None, "preparing"):
            st.progress(0.0, text="Starting (loading PyTorch and the pretrained network)…")
        elif status.get("stage") == "features":
            st.progress(0.0, text=f"Computing features once: {status.get('detail', '')}")
        else:
            eta = status.get("eta_seconds")
            st.progress(min(float(status.get("progress", 0)), 1.0),
                        text=f"{status.get('stage')} epoch {status.get('epoch')}/{status.get('stage_epochs')} · "
                             f"{status.get('images_per_s') or 0:.0f} images/s"
                             + (f" · about {eta:.0f} s left in this stage" if eta else ""))
    records = run.metrics()
    if records:
        st.plotly_chart(training_curves(records), width="stretch", key=f"curves-{len(records)}",
                        config={"displayModeBar": False})
        st.caption(summarize(records))
        if state in ("succeeded", "stopped"):
            d = diagnose(records)
            advice = "".join(f"\n- {a}" for a in d["advice"])
            st.info(f"**Diagnosis: {d['verdict']}** ({d['why']}).{' What to try:' + advice if advice else ''}")
    if state == "failed":
        st.error(f"Training failed: {status.get('error', 'unknown reason')}")
        if run.log_file.exists():
            st.code("\n".join(run.log_file.read_text(errors="replace").splitlines()[-25:]))
    elif state == "interrupted":
        st.warning("The training process ended without finishing (killed or the machine restarted). "
                   "Resume continues from the last saved epoch.")
    elif state in ("succeeded", "stopped") and (res := status.get("result")):
        score = (f"test accuracy {res['test_accuracy']:.1%} (validation {res['val_accuracy']:.1%})"
                 if res.get("test_accuracy") is not None else "no test images to score")
        if state == "stopped":
            st.info(f"Stopped after {res['epochs_run']} epoch(s); the best model so far: {score}.")
        else:
            st.success(f"Done in {res['seconds']:.0f} s: {score}.")
    if live and not is_live(run):
        time.sleep(0.2)
        st.rerun()  # one full rerun when the run ends, to re-enable the buttons


show_run()
if run_state(run) == "interrupted" and st.button("Resume", key="t_resume"):
    from tl_core.launcher import start_process

    start_process(run, resume=True, processes=run.status().get("processes", 1))
    st.rerun()
next_step("evaluate", "pages/evaluate.py")
