"""Step 7: every run and lab on this server, compare their curves, delete old ones."""

from datetime import datetime
from pathlib import Path

import streamlit as st

from tl_core.diagnose import epochs_total, overall_epoch
from tl_core.figures import compare_curves, describe_curves, val_curves
from tl_core.i18n import _
from tl_core.errors import TLError
from tl_core.launcher import delete_run
from tl_core.runs import RunDir, is_lab, list_runs, read_json, run_state
from tl_core.stats import interval_text
from ui.common import current_run, runs_dir, set_current_run

st.title(_("7 · Runs"))
everything = list_runs(runs_dir())
if not everything:
    st.info(_("No runs yet: start one on the Train page."))
    st.stop()


def _row(r: RunDir) -> dict:
    cfg, status = read_json(r.config_file, {}) or {}, r.status()
    res = status.get("result") or {}
    lab = is_lab(r.path)
    data = (read_json(r.path / "lab.json", {}) or {}).get("data") if lab else cfg.get("data")
    acc = res.get("test_accuracy")
    ev = {} if lab else read_json(r.eval_file, {}) or {}
    records = r.metrics() if ev.get("best_stage") else []
    return {_("run"): r.id, _("status"): _(run_state(r)),
            _("backbone"): _("scenario lab") if lab else cfg.get("backbone"),
            _("scenario"): "1-4" if lab else str(cfg.get("scenario") or ""), _("data"): Path(data or "").name,
            _("test accuracy"): (f"{acc:.1%}" + (f" ({interval_text(acc, res['test_images'])})"
                                                  if res.get("test_images") else "")) if acc is not None else "",
            _("best epoch"): _("{epoch} of {epochs}", epoch=overall_epoch(records, ev["best_stage"], ev["best_epoch"]),
                               epochs=epochs_total(records)) if records else "",
            _("seconds"): f"{res['seconds']:.0f}" if res.get("seconds") is not None else "",
            _("started"): datetime.fromtimestamp(status["started"]).strftime("%Y-%m-%d %H:%M")
            if status.get("started") else ""}


st.dataframe([_row(r) for r in everything], width="stretch", hide_index=True)

runs = [r for r in everything if not is_lab(r.path)]
ids = [r.id for r in runs]
current = current_run()
if ids:
    pick = st.selectbox(_("Open a run"), ids, index=ids.index(current.id) if current and current.id in ids else 0,
                        key="r_open")
    if st.button(_("Make it the current run"), key="r_make_current"):
        set_current_run(pick)
        st.success(_("{run} is now shown on the Train, Evaluate and Predict pages.", run=pick))

compare = st.multiselect(_("Compare validation curves"), ids, default=ids[: min(2, len(ids))], key="r_compare")
if compare:
    series = val_curves({rid: RunDir(runs_dir() / rid).metrics() for rid in compare})
    st.plotly_chart(compare_curves(series), width="stretch", config={"displayModeBar": False})
    st.caption(describe_curves(series))

with st.expander(_("Delete a run")):
    everyone = [r.id for r in everything]
    victim = st.selectbox(_("Run to delete"), everyone, key="r_victim")
    # One confirmation box per run: ticking it for one run never arms Delete for another.
    confirm = st.checkbox(_("Yes, delete {run} and its model for good", run=victim), key=f"r_confirm.{victim}")
    if st.button(_("Delete"), disabled=not confirm, key="r_delete"):
        try:
            delete_run(RunDir(runs_dir() / victim))  # refuses a live run, with its state
        except TLError as exc:
            st.error(str(exc))
        else:
            st.session_state.pop(f"r_confirm.{victim}", None)
            if current and current.id == victim:
                set_current_run(None)
            st.rerun()
