"""Step 1: the two questions of the method, the four-scenario grid and the advice."""

import streamlit as st

from tl_core.figures import describe_grid, scenario_grid
from tl_core.freezing import SCENARIOS, get_scenario, scenario_for
from tl_core.glossary import explain
from tl_core.i18n import _
from ui.advice import show_measured_advice
from ui.common import lkey, next_step, scenario, wizard, wizard_plan

w = wizard()
st.title(_("1 · Plan: how much of the pretrained network to reuse"))
st.write(_("A network pretrained on ImageNet (1.3 million everyday photos, 1000 classes) already knows edges, "
           "textures and object parts. Two facts about **your** images decide how much of that knowledge to keep "
           "frozen and how much to retrain."))

left, right = st.columns(2)
with left:
    st.subheader(_("How big is your data set?"))
    st.caption(_("Rule of thumb: up to a few hundred images per class is *small*; thousands per class is *large*."))
    w["size"] = st.radio(_("Data set size"), ["small", "large"], index=["small", "large"].index(w["size"]),
                         format_func={"small": _("Small (≲ 500 images per class)"),
                                      "large": _("Large (thousands per class)")}.get, key=lkey("q_size"))
with right:
    st.subheader(_("Do your images look like ImageNet photos?"))
    st.caption(_("Cars vs ships, cats vs dogs, flowers: similar. Lung X-rays, microscope slides, "
                 "satellite maps, hand-sign close-ups: different."))
    w["similarity"] = st.radio(_("Similarity to ImageNet"), ["similar", "different"],
                               index=["similar", "different"].index(w["similarity"]),
                               format_func={"similar": _("Similar (everyday photos of objects, animals, scenes)"),
                                            "different": _("Different (medical, technical, symbols, ...)")}.get,
                               key=lkey("q_similarity"))

recommended = scenario_for(w["size"], w["similarity"]).number
override = st.toggle(_("Choose a different scenario myself"), value=w["scenario"] not in (None, recommended),
                     key="q_override")
if override:
    w["scenario"] = st.selectbox(_("Scenario"), [1, 2, 3, 4], index=(w["scenario"] or recommended) - 1,
                                 format_func=lambda n: f"{n}: {_(SCENARIOS[n].title)}", key=lkey("q_scenario"))
else:
    w["scenario"] = None
sc = get_scenario(scenario())

st.plotly_chart(scenario_grid(sc.number), width="stretch", config={"displayModeBar": False})
st.caption(describe_grid(sc.number))
st.subheader(_("Scenario {n}: {title}", n=sc.number, title=_(sc.title)))
if sc.number != recommended:
    st.warning(_("You chose scenario {n}; for {size} + {similarity} data the method recommends scenario {rec}.",
                 n=sc.number, size=_(w["size"]), similarity=_(w["similarity"]), rec=recommended))
st.write(_(sc.reason))
show_measured_advice(w, recommended)

plan = wizard_plan(w)  # what Start training will do, with the Model page's own freeze if any
way = {"feature_extractor": _("Frozen feature extractor + new classifier"), "fine_tune": _("Fine-tuning")}[plan.way]
c1, c2, c3 = st.columns(3)
# Plain text, not st.metric: a metric cuts a long value ("Frozen feature ext…").
c1.markdown(_("**Way to use the pretrained net**") + f"\n\n### {way}",
            help=explain("feature_extractor" if plan.head_only else "fine_tune"))
c2.metric(_("Frozen share of {name}", name=w["backbone"]), f"{plan.frozen_share:.0%}",
          help=explain("frozen") + " " + _("Counted in parameters (the numbers the network learned)."))
c2.caption(_("{k} of {n} layer groups, counted in parameters", k=plan.frozen_groups, n=plan.total_groups),
           help=explain("layer_groups"))
lrs = plan.group_lrs
c3.metric(_("Learning rate of the new head"), f"{plan.head_lr:g}", help=explain("learning_rate"))
c3.caption(_("Unfrozen pretrained layers: {first:g} (earliest) → {last:g} (last)", first=float(f"{lrs[0]:.1g}"),
             last=float(f"{lrs[-1]:.1g}")) if lrs else _("Pretrained layers: frozen (no learning rate)"))
with st.expander(_("Why different learning rates?")):
    st.write(_("The new head starts from random numbers and must learn fast. The pretrained layers are already "
               "good: a large learning rate would wreck what they learned, so they get small ones, smallest for the "
               "early, most general layers (discriminative learning rates). Training first fits the head alone, "
               "then unfreezes the planned layers, like fastai's `fine_tune` and the Keras transfer-learning "
               "guide."))
with st.expander(_("The three ways to use a pretrained network")):
    st.markdown(_("- **As it is**: an ImageNet classifier with its 1000 labels (try it on the Predict page).\n"
                  "- **Frozen feature extractor**: keep every pretrained layer, train only a new classifier head.\n"
                  "- **Fine-tuning**: also retrain some pretrained layers, slowly."))
next_step(_("choose your images"), "pages/data.py")
