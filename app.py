"""Router only: the pages live in pages/, all logic in tl_core."""

import streamlit as st

st.set_page_config(page_title="Transfer learning wizard", page_icon="🧭", layout="wide")
pages = [st.Page("pages/1_plan.py", title="Plan", icon="🧭", default=True)]
st.navigation(pages).run()
