"""Classroom mode: how to join (address, QR code, the browser's certificate warning) and your workspace."""

import streamlit as st

from tl_core import settings
from tl_core.classroom import qr_png
from tl_core.i18n import _

st.title(_("Join the class"))
url = settings.join_url()
if not settings.classroom() or not url:
    st.info(_("This app runs for one person on this computer. To serve a classroom, start it with "
              "`bash scripts/start.sh --classroom`."))
    st.stop()

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
