import streamlit as st

from tl_core.freezing import SCENARIOS

st.title("Transfer learning wizard")
st.write("Pick the transfer level from two facts about your data: its size and how similar it is to ImageNet.")
size = st.radio("How many images per class?", ["small", "large"], horizontal=True)
similarity = st.radio("Do your images look like everyday photos?", ["similar", "different"], horizontal=True)
sc = next(s for s in SCENARIOS.values() if s.size == size and s.similarity == similarity)
st.subheader(f"Scenario {sc.number}: {sc.title}")
st.write(sc.reason)
