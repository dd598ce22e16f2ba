"""Step 7: every run on this server, compare their curves, delete old ones."""

import shutil
from datetime import datetime

import streamlit as st

from tl_core.figures import describe_curves
from tl_core.i18n import _
from tl_core.launcher import is_live
from tl_core.runs import RunDir, read_json, run_state
from ui.common import current_run, runs_dir, set_current_run

st.title(_("7 · Runs"))
runs = [RunDir(p) for p in sorted(runs_dir().glob("*"), reverse=True) if (p / "config.json").is_file()]
if not runs:
    st.info(_("No runs yet: start one on the Train page."))
    st.stop()

rows = []
for r in runs:
    cfg, status = read_json(r.config_file, {}), r.status()
    res = status.get("result") or {}
    rows.append({_("run"): r.id, _("status"): _(run_state(r)), _("backbone"): cfg.get("backbone"),
                 _("scenario",
                   ): cfg.get("scenario"), _("data"): "/".join((cfg.get("data") or "").rstrip("/").split("/")[-2:]),
                 _("test acc"): res.get("test_accuracy"), _("seconds"): res.get("seconds"),
                 _("started"): datetime.fromtimestamp(status["started"]).strftime("%Y-%m-%d %H:%M")
                 if status.get("started") else ""})
st.dataframe(rows, width="stretch", hide_index=True)

ids = [r.id for r in runs]
current = current_run()
pick = st.selectbox(_("Open a run"), ids, index=ids.index(current.id) if current and current.id in ids else 0,
                    key="r_open")
if st.button(_("Make it the current run"), key="r_make_current"):
    set_current_run(pick)
    st.success(_("{run} is now shown on the Train, Evaluate and Predict pages.", run=pick))

compare = st.multiselect(_("Compare validation curves"), ids, default=ids[: min(2, len(ids))], key="r_compare")
if compare:
    import plotly.graph_objects as go

    fig, series = go.Figure(), {}
    for rid in compare:
        eps = [m for m in RunDir(runs_dir() / rid).metrics() if m.get("kind") == "epoch"]
        series[rid] = [m.get("val_acc") for m in eps]
        fig.add_scatter(x=list(range(1, len(eps) + 1)), y=series[rid], name=rid, mode="lines+markers")
    fig.update_layout(height=320, xaxis_title=_("epoch"), yaxis_title=_("validation accuracy"),
                      margin=dict(l=10, r=10, t=10, b=10))
    st.plotly_chart(fig, width="stretch", config={"displayModeBar": False})
    st.caption(describe_curves(series))

with st.expander(_("Delete a run")):
    victim = st.selectbox(_("Run to delete"), ids, key="r_victim")
    confirm = st.checkbox(_("Yes, delete {run} and its model for good", run=victim), key="r_confirm")
    if st.button(_("Delete"), disabled=not confirm, key="r_delete"):
        target = RunDir(runs_dir() / victim)
        if is_live(target):
            st.error(_("This run is still training: stop it first."))
        else:
            shutil.rmtree(target.path, ignore_errors=True)
            if current and current.id == victim:
                set_current_run(None)
            st.rerun()
