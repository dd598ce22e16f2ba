"""Step 3: the pretrained network, what is frozen, the head and the training settings."""

import streamlit as st

from tl_core.backbones import count_params, get_backbone, group_table, list_backbones
from tl_core.data import scan_folder
from tl_core.errors import TLError
from tl_core.estimate import estimate_seconds, known_speeds, measure_forward, preflight
from tl_core.figures import layer_groups
from tl_core.freezing import get_scenario
from tl_core.glossary import explain, glossary_markdown
from tl_core.i18n import _
from tl_core.model import build_head
from tl_core.recipe import train_images
from tl_core.reference_runs import CONDITIONS, PROJECTS, reference_runs
from ui.model_tools import augmentation_preview
from ui.common import config_from_wizard, frozen_override, lkey, next_step, scenario, wizard, wizard_plan

w = wizard()


def _duration(seconds: float) -> str:
    return (_("about {n:.0f} seconds", n=seconds) if seconds < 90 else _("about {n:.0f} minutes", n=seconds / 60))


def _set_frozen(scenario_number: int, backbone: str, planned: int) -> None:
    """The slider moved: keep the user's number of groups, tied to the scenario and network it was chosen for."""
    k = st.session_state["m_frozen"]
    w["frozen_override"] = None if k == planned else {"scenario": scenario_number, "backbone": backbone, "groups": k}


def _augment_off() -> None:
    w["augment"] = st.session_state[lkey("m_augment")] = "none"


st.title(_("3 · Model: network, frozen layers, head and training"))

speeds = known_speeds()
names = list_backbones()
w["backbone"] = st.selectbox(_("Pretrained network"), names, index=names.index(w["backbone"]), key="m_backbone",
                             format_func=lambda n: f"{n} · {_(get_backbone(n).description)}",
                             help=_("Start with the first one: small and fast. The others are bigger: a little more "
                                    "accurate, slower."))
with st.expander(_("Expert details: the networks compared")):
    rows = []
    for name in names:
        s = get_backbone(name)
        rows.append({_("backbone"): name, _("ImageNet params (M)"): round(s.params / 1e6, 1),
                     _("input px"): s.input_size, "GFLOPs": s.gflops,
                     _("images/s here"): f"{speeds[name]:.0f}" if name in speeds else _("not measured yet"),
                     _("weights"): s.check_weights().label, _("about"): _(s.description)})
    st.dataframe(rows, width="stretch", hide_index=True)
    st.markdown(glossary_markdown(["params", "input_px", "gflops"]))
    st.write(_("**What a bigger network buys: EfficientNet-Lite0, 1 and 2 measured on two projects**"))
    st.dataframe([{_("project"): _(PROJECTS[r.project]), _("backbone"): r.backbone,
                   _("test accuracy"): f"{r.test_accuracy:.1%}", _("seconds"): round(r.seconds),
                   _("images/s"): round(r.images_per_s, 1)} for r in reference_runs()],
                 width="stretch", hide_index=True)
    st.caption(_(CONDITIONS))
spec = get_backbone(w["backbone"])
weights = spec.check_weights()
if weights.state == "download":
    st.warning(_("{name}'s weights are not on this machine yet: training downloads {weights} (needs internet). "
                 "Offline, copy that file to {path}.", name=spec.name, weights=spec.weights_id, path=spec.cache_path()))
elif weights.state == "unusable":
    st.error(_("{name}'s weights cannot be used here: {detail}", name=spec.name, detail=weights.detail))

sc = get_scenario(scenario())
names_g, counts, flops = map(list, group_table(spec.name))
default_k = wizard_plan(w, planned=True).frozen_groups
override = frozen_override(w)
chosen = default_k if override is None else override
if st.session_state.get("m_frozen") != chosen:  # a new scenario or network resets the slider to its plan
    st.session_state["m_frozen"] = chosen
k = st.slider(_("Frozen layer groups (from the input side)"), 0, len(names_g), key="m_frozen",
              on_change=_set_frozen, args=(sc.number, spec.name, default_k),
              help=explain("layer_groups") + " " + explain("frozen") + " "
              + _("Scenario {n} suggests {k} of {total}.", n=sc.number, k=default_k, total=len(names_g)))
c1, c2 = st.columns(2)
w["head_hidden"] = c1.number_input(_("Hidden units of the new head (0 = a single linear layer)"), 0, 2048,
                                   w["head_hidden"], step=16, key="m_hidden", help=explain("hidden_units"))
head_params = count_params(build_head(spec.feature_dim, 10, w["head_hidden"]))
frozen_share = sum(counts[:k]) / sum(counts)
st.caption(_("{k} of {groups} layer groups frozen: {share:.0%} of the pretrained network's parameters keep what "
             "they learned on ImageNet; the rest and the new head learn from your photos.", k=k, groups=len(names_g),
             share=frozen_share))
with st.expander(_("Expert details: the layer groups")):
    st.plotly_chart(layer_groups(names_g, counts, k, head_params), width="stretch", config={"displayModeBar": False})
    st.caption(_("Chart: parameters of the {groups} layer groups, input side first; the first {k} are frozen. Grey: "
                 "frozen ({share:.0%} of {total:,} pretrained parameters). Blue: fine-tuned with small learning "
                 "rates. Orange: the new head (about {head:,} parameters for 10 classes).", groups=len(names_g), k=k,
                 share=frozen_share, total=sum(counts), head=head_params))

w["augment"] = c2.selectbox(_("Augmentation (random crops, flips, colour changes)",
                              ), ["auto", "none", "light", "strong"],
                            index=["auto", "none", "light", "strong"].index(w["augment"]), key=lkey("m_augment"),
                            format_func={"auto": _("auto"), "none": _("none"), "light": _("light"),
                                         "strong": _("strong")}.get,
                            help=explain("augmentation") + " "
                            + _("auto = none: every frozen layer runs once and is cached, so epochs are fast"))
epochs_default = 0 if w["epochs"] is None else w["epochs"]
w["epochs"] = c1.number_input(_("Epochs (0 = automatic)"), 0, 500, epochs_default, key="m_epochs",
                              help=explain("epochs")) or None
w["head_lr"] = c2.select_slider(_("Learning rate of the head"), [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], w["head_lr"],
                                key="m_lr", format_func=lambda v: f"{v:g}", help=explain("learning_rate"))

ips = speeds.get(spec.name)
if ips is None or st.button(_("Measure {name}'s speed again", name=spec.name), key="m_measure"):
    with st.spinner(_("Timing {name} on this machine…", name=spec.name)):
        ips = measure_forward(spec)
try:
    n = len(scan_folder(w["data_dir"]).items) if w["data_dir"] else 0
except TLError:
    n = 0
plan = wizard_plan(w, n)  # the same plan Start training resolves

augmentation_preview(w, plan.augment)
st.subheader(_("How long will it take?"))
st.caption(_("Times a few real batches of your images on this machine (decoding, the frozen forward pass and one "
             "training step at the chosen freeze) and works out how long the run will take."))
augment = plan.augment
cfg = config_from_wizard(w)
if w["data_dir"] and st.button(_("Time a few batches"), key="m_preflight"):
    with st.spinner(_("Timing 2 batches of your images…")):
        try:
            st.session_state["preflight"] = {"key": cfg, **preflight(cfg)}
        except TLError as exc:
            st.error(str(exc))
pf = st.session_state.get("preflight")
fresh = bool(pf) and pf["key"] == cfg
w["estimate"] = None
if fresh:  # one estimate: the timed batches when there are some, else the measured forward speed
    ms = pf["ms_per_image"]
    w["estimate"] = {"config": cfg, "seconds": pf["seconds"]}
    st.info(_("Expected duration: **{took}** for {images} images and {epochs} epochs (per image: decoding {load:.1f} "
              "ms, frozen forward {forward:.1f} ms, training step {step:.1f} ms).", took=_duration(pf["seconds"]),
              images=pf["images"], epochs=pf["epochs"], load=ms["load"], forward=ms["forward"], step=ms["step"]))
    if augment != "none" and pf["seconds"] > 120 and pf["seconds"] > 2 * pf["cached_seconds"]:
        st.warning(_("With augmentation every epoch re-runs the frozen layers. In cached-feature mode (no "
                     "augmentation) they run once: **{took}**.", took=_duration(pf["cached_seconds"])))
        st.button(_("Use cached features (augmentation off)"), key="m_use_cache", on_click=_augment_off)
elif ips and n:
    seconds = estimate_seconds(plan, n, train_images(n, cfg), round(n * cfg.val_fraction), ips, flops)
    w["estimate"] = {"config": cfg, "seconds": seconds}
    st.info(_("{name} reads about {ips:.0f} images/s here. Estimated training time for {n} images: **{took}**",
              name=spec.name, ips=ips, n=n, took=_duration(seconds))
            + (_(" (features cached once, then each epoch takes a moment)") if plan.head_only and plan.use_cache
               else ""))
    if pf:
        st.caption(_("Settings changed since the batches were timed: time them again for a closer estimate."))
next_step(_("train"), "pages/train.py")
