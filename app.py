"""Router only: the pages live in pages/, the logic in tl_core."""

import streamlit as st

from tl_core import settings
from tl_core.i18n import _, language
from ui.common import collect_garbage, device_line, language_switch, workspace

st.set_page_config(page_title=_("Transfer learning wizard"), page_icon=":material/explore:", layout="wide")
language_switch()
# Korean wraps between words, never inside one: no title strands a single syllable on its own line.
st.html("<style>h1, h2, h3, p, li, label {word-break: keep-all; overflow-wrap: anywhere;}</style>")
pages = [
    st.Page("pages/plan.py", title=_("1 · Plan"), icon=":material/explore:", default=True),
    st.Page("pages/collect.py", title=_("Collect with the camera"), icon=":material/photo_camera:"),
    st.Page("pages/data.py", title=_("2 · Data"), icon=":material/folder_open:"),
    st.Page("pages/model.py", title=_("3 · Model"), icon=":material/layers:"),
    st.Page("pages/train.py", title=_("4 · Train"), icon=":material/monitoring:"),
    st.Page("pages/evaluate.py", title=_("5 · Evaluate"), icon=":material/fact_check:"),
    st.Page("pages/predict.py", title=_("6 · Predict"), icon=":material/image_search:"),
    st.Page("pages/runs.py", title=_("7 · Runs"), icon=":material/history:"),
    st.Page("pages/lab.py", title=_("8 · Scenario lab"), icon=":material/science:"),
]
if settings.classroom():  # every visitor works in their own workspace: joining comes first
    join = st.Page("pages/join.py", title=_("Join the class"), icon=":material/qr_code_2:", url_path="join")
    teacher = st.Page("pages/teacher.py", title=_("Teacher view"), icon=":material/school:", url_path="teacher")
    pages = [join, *pages, teacher] if workspace() is not None else [join, teacher]
nav = st.navigation(pages)
st.sidebar.caption(f":material/memory: {device_line(language())}")
collect_garbage()
nav.run()
