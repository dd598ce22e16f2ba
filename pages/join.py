"""Classroom mode: how to join (address, QR code, the browser's certificate warning) and your workspace."""

import streamlit as st

from tl_core import settings
from tl_core.classroom import qr_png
from tl_core.i18n import _
from tl_core.workspaces import WorkspaceError, clear, join, usage_bytes
from ui.common import enter_workspace, workspace

st.title(_("Join the class"))
url = settings.join_url()
if not settings.classroom() or not url:
    st.info(_("This app runs for one person on this computer. To serve a classroom, start it with "
              "`bash scripts/start.sh --classroom`."))
    st.stop()


def joined() -> None:
    try:
        enter_workspace(join(st.session_state["j_name"], st.session_state["j_code"]))
    except WorkspaceError as exc:
        st.session_state["join_error"] = str(exc)


def cleared() -> None:
    ws = workspace()
    if ws is not None:
        clear(ws)
        st.session_state.pop("wizard", None)
        st.session_state["cleared"] = True
    st.session_state["j_clear_confirm"] = False


ws = workspace()
if ws is None:
    with st.form("j_form"):
        st.text_input(_("Your name (or a nickname)"), key="j_name", max_chars=32)
        st.text_input(_("Join code"), value=st.query_params.get("code", ""), key="j_code", max_chars=12)
        st.form_submit_button(_("Join"), type="primary", on_click=joined)
    if err := st.session_state.pop("join_error", None):
        st.error(err)
else:
    st.success(_("You are working in **{name}**'s workspace. Keep this page's address (bookmark it): it brings you "
                 "back to your work.", name=ws.name))
    st.page_link("pages/plan.py", label=_("Start: 1 · Plan"), icon=":material/arrow_forward:")
    used, quota = usage_bytes(ws), settings.workspace_quota_bytes()
    st.progress(min(used / quota, 1.0), text=_("Images: {used:.3g} MB of {quota:.3g} MB", used=used / 1e6,
                                                 quota=quota / 1e6))
    with st.expander(_("Clear my workspace")):
        st.write(_("Deletes every image you collected or uploaded and every model you trained, on the teacher's "
                   "computer, for good."))
        confirm = st.checkbox(_("Yes, delete my images and runs"), key="j_clear_confirm")
        st.button(_("Clear my workspace"), disabled=not confirm, on_click=cleared, key="j_clear")
    if st.session_state.pop("cleared", False):
        st.info(_("Your workspace is empty now."))

st.divider()
left, right = st.columns([1, 2])
left.image(qr_png(url), caption=_("Scan to join"), width=280)
with right:
    st.subheader(_("Open this address on a phone, tablet or laptop in this room"))
    st.code(url, language=None)
    st.write(_("**The browser will warn that the connection is not private.** The teacher's laptop made its own "
               "certificate (a classroom has no internet authority to sign one), and the camera only works over "
               "an encrypted connection. Choose *Advanced* → *Proceed* (Safari: *Show details* → *visit this "
               "website*) once."))
    st.caption(_("Privacy: your photos and models are stored only on the teacher's computer, never sent anywhere "
                 "else, and you can delete them at any time with *Clear my workspace*."))
