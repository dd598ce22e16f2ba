"""Router only: the pages live in pages/, the logic in tl_core."""

import streamlit as st

st.set_page_config(page_title="Transfer learning wizard", page_icon="🧭", layout="wide")
pages = [
    st.Page("pages/plan.py", title="1 · Plan", icon="🧭", default=True),
    st.Page("pages/data.py", title="2 · Data", icon="📁"),
    st.Page("pages/model.py", title="3 · Model", icon="🧱"),
    st.Page("pages/train.py", title="4 · Train", icon="📈"),
    st.Page("pages/evaluate.py", title="5 · Evaluate", icon="✅"),
    st.Page("pages/predict.py", title="6 · Predict", icon="🔮"),
    st.Page("pages/runs.py", title="7 · Runs", icon="🗂️"),
]
st.navigation(pages).run()
