"""Step 1: the two questions of the method, the four-scenario grid and the advice."""

import streamlit as st

from tl_core.backbones import get_backbone, group_table
from tl_core.figures import describe_grid, scenario_grid
from tl_core.freezing import SCENARIOS, advise, default_lr_ratio, discriminative_lrs, get_scenario
from ui.common import next_step, scenario, wizard

w = wizard()
st.title("1 · Plan: how much of the pretrained network to reuse")
st.write("A network pretrained on ImageNet (1.3 million everyday photos, 1000 classes) already knows edges, "
         "textures and object parts. Two facts about **your** images decide how much of that knowledge to keep "
         "frozen and how much to retrain.")

left, right = st.columns(2)
with left:
    st.subheader("How big is your data set?")
    st.caption("Rule of thumb: up to a few hundred images per class is *small*; thousands per class is *large*.")
    w["size"] = st.radio("Data set size", ["small", "large"], index=["small", "large"].index(w["size"]),
                         format_func={"small": "Small (≲ 500 images per class)",
                                      "large": "Large (thousands per class)"}.get, key="q_size")
with right:
    st.subheader("Do your images look like ImageNet photos?")
    st.caption("Cars vs ships, cats vs dogs, flowers: similar. Lung X-rays, microscope slides, "
               "satellite maps, hand-sign close-ups: different.")
    w["similarity"] = st.radio("Similarity to ImageNet", ["similar", "different"],
                               index=["similar", "different"].index(w["similarity"]),
                               format_func={"similar": "Similar (everyday photos of objects, animals, scenes)",
                                            "different": "Different (medical, technical, symbols, ...)"}.get,
                               key="q_similarity")

recommended = advise(w["size"], w["similarity"]).scenario
override = st.toggle("Choose a different scenario myself", value=w["scenario"] not in (None, recommended),
                     key="q_override")
if override:
    w["scenario"] = st.selectbox("Scenario", [1, 2, 3, 4], index=(w["scenario"] or recommended) - 1,
                                 format_func=lambda n: f"{n}: {SCENARIOS[n].title}", key="q_scenario")
else:
    w["scenario"] = None
sc = get_scenario(scenario())

st.plotly_chart(scenario_grid(sc.number), width="stretch", config={"displayModeBar": False})
st.caption(describe_grid(sc.number))
st.subheader(f"Scenario {sc.number}: {sc.title}")
if sc.number != recommended:
    st.warning(f"You chose scenario {sc.number}; for {w['size']} + {w['similarity']} data the method recommends "
               f"scenario {recommended}.")
st.write(sc.reason)

spec = get_backbone(w["backbone"])
advice = advise(sc.size, sc.similarity, list(group_table(spec.name)[1]))
way = {"feature_extractor": "Frozen feature extractor + new classifier",
       "fine_tune": "Fine-tuning"}[sc.way]
c1, c2, c3 = st.columns(3)
c1.metric("Way to use the pretrained net", way)
c2.metric(f"Frozen share of {spec.name}", f"{advice.frozen_fraction:.0%}")
c2.caption(f"{advice.frozen_groups} of {advice.total_groups} layer groups, counted in parameters")
lrs = discriminative_lrs(advice.total_groups, advice.frozen_groups, w["head_lr"], default_lr_ratio(sc.number))
c3.metric("Learning rate of the new head", f"{w['head_lr']:g}")
c3.caption(f"Unfrozen pretrained layers: {lrs[0]:.0e} (earliest) → {lrs[-1]:.0e} (last)" if lrs
           else "Pretrained layers: frozen (no learning rate)")
with st.expander("Why different learning rates?"):
    st.write("The new head starts from random numbers and must learn fast. The pretrained layers are already good: "
             "a large learning rate would wreck what they learned, so they get small ones, smallest for the early, "
             "most general layers (discriminative learning rates). Training first fits the head alone, then "
             "unfreezes the planned layers, like fastai's `fine_tune` and the Keras transfer-learning guide.")
with st.expander("The three ways to use a pretrained network"):
    st.markdown("- **As it is**: an ImageNet classifier with its 1000 labels (try it on the Predict page).\n"
                "- **Frozen feature extractor**: keep every pretrained layer, train only a new classifier head.\n"
                "- **Fine-tuning**: also retrain some pretrained layers, slowly.")
next_step("choose your images", "pages/data.py")
