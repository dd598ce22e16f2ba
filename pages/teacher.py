"""Classroom mode, teacher only (PIN printed at start): every workspace, a leaderboard per data set,
stop any run, clear the class."""

import streamlit as st

from tl_core import settings
from tl_core.i18n import _
from tl_core.launcher import stop
from tl_core.runs import run_state
from tl_core.stats import interval_text
from tl_core.teacher import leaderboard, live_runs, overview
from tl_core.workspaces import check_pin, pin_locked, remove_all
from ui.common import enter_workspace

st.title(_("Teacher view"))
CONFIRM = _("clear the class")


def unlock() -> None:
    st.session_state["teacher"] = check_pin(st.session_state.get("t_pin", ""))
    st.session_state["pin_refused"] = not st.session_state["teacher"]


def stop_run(run) -> None:
    st.session_state["t_stopped"] = (run.id, stop(run, grace=3.0))


def clear_class() -> None:
    if st.session_state.get("t_confirm", "").strip() == CONFIRM:
        st.session_state["cleared_n"] = remove_all()
        enter_workspace(None)  # the teacher's own workspace, if any, is gone too
    else:
        st.session_state["confirm_wrong"] = True
    st.session_state["t_confirm"] = ""


if not settings.classroom():
    st.info(_("The teacher view exists in classroom mode only (`bash scripts/start.sh --classroom`)."))
    st.stop()
if not st.session_state.get("teacher"):
    with st.form("t_pin_form"):
        st.text_input(_("Teacher PIN (printed in the terminal that started the app)"), type="password", key="t_pin")
        st.form_submit_button(_("Open"), on_click=unlock)
    if st.session_state.pop("pin_refused", False):
        st.error(_("Too many wrong PINs on this server: wait a minute, then try again.") if pin_locked() else
                 _("That is not the PIN: look in the terminal where the classroom server was started."))
    st.stop()

if (n := st.session_state.pop("cleared_n", None)) is not None:
    st.success(_("Cleared the class: {n} workspaces deleted.", n=n))
rows = overview()
st.subheader(_("Workspaces ({n})", n=len(rows)))
if not rows:
    st.info(_("Nobody has joined yet: show the join page's QR code to the class."))
st.dataframe([{_("name"): r["name"], _("runs"): r["runs"], _("training or waiting"): r["live"],
               _("best test accuracy"): f"{r['best_test_accuracy']:.1%}" if r["best_test_accuracy"] is not None
               else "", _("images (MB)"): round(r["mb"], 1)} for r in rows], width="stretch", hide_index=True)

st.subheader(_("Leaderboard per data set"))
boards = leaderboard()
if not boards:
    st.caption(_("No finished runs yet."))
else:
    st.caption(_("Each student tests on their own photos: two scores whose 95% intervals overlap may differ by "
                 "chance alone, whatever their rank."))
for data, board in boards.items():
    st.text(data)  # a name a student chose: shown as text, never as Markdown
    st.dataframe([{"#": i + 1, _("name"): b["name"], _("test accuracy"): f"{b['test_accuracy']:.1%}",
                   _("95% interval"): interval_text(b["test_accuracy"], b["test_images"]) if b["test_images"] else "",
                   _("test images"): b["test_images"], _("backbone"): b["backbone"], _("scenario"): b["scenario"],
                   _("run"): b["run"]} for i, b in enumerate(board)], width="stretch", hide_index=True)

st.subheader(_("Runs training or waiting"))
if (said := st.session_state.pop("t_stopped", None)) is not None:
    st.success(_("{run} is {state}.", run=said[0], state=_(said[1])))
live = live_runs()
for ws, run in live:
    left, right = st.columns([5, 1], vertical_alignment="center")
    left.text(f"{ws.name} · {run.id} · {_(run_state(run))}")  # names as text, never Markdown
    right.button(_("Stop"), key=f"t_stop_{ws.id}_{run.id}", on_click=stop_run, args=(run,))
if not live:
    st.caption(_("Nothing is training."))

with st.expander(_("Clear the class")):
    st.write(_("Stops every run and deletes every workspace (images, runs, answers) for good. Type "
               "**{phrase}** to confirm.", phrase=CONFIRM))
    st.text_input(_("Confirmation"), key="t_confirm")
    st.button(_("Clear the class"), type="primary", on_click=clear_class, key="t_clear")
    if st.session_state.pop("confirm_wrong", False):
        st.error(_("Nothing was deleted: type {phrase} exactly to clear the class.", phrase=CONFIRM))
