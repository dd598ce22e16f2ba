"""Router only: the pages live in pages/, the logic in tl_core."""

import streamlit as st

from ui.common import device_line

st.set_page_config(page_title="Transfer learning wizard", page_icon=":material/explore:", layout="wide")
pages = [
    st.Page("pages/plan.py", title="1 · Plan", icon=":material/explore:", default=True),
    st.Page("pages/data.py", title="2 · Data", icon=":material/folder_open:"),
    st.Page("pages/model.py", title="3 · Model", icon=":material/layers:"),
    st.Page("pages/train.py", title="4 · Train", icon=":material/monitoring:"),
    st.Page("pages/evaluate.py", title="5 · Evaluate", icon=":material/fact_check:"),
    st.Page("pages/predict.py", title="6 · Predict", icon=":material/image_search:"),
    st.Page("pages/runs.py", title="7 · Runs", icon=":material/history:"),
    st.Page("pages/lab.py", title="8 · Scenario lab", icon=":material/science:"),
]
nav = st.navigation(pages)
st.sidebar.caption(f":material/memory: {device_line()}")
nav.run()
