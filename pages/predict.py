"""Step 6: classify new photos (upload or webcam) with a trained run, or with ImageNet as-is."""

import hashlib
import tempfile
from pathlib import Path

import streamlit as st

from tl_core.backbones import DEFAULT_BACKBONE, list_backbones
from tl_core.errors import TLError
from tl_core.figures import describe_top_k, top_k
from tl_core.i18n import _
from tl_core.imaging import ImageReadError, load_rgb
from tl_core.predict import Predictor
from tl_core.runs import RunDir, read_json, run_state
from tl_core.serving import BundlePredictor
from tl_core.sharing import unpack_bundle
from ui.live import live_predict
from ui.share import on_device_hint
from ui.run_tools import bundle_threshold, calibrated_top, not_sure_text, sure_threshold
from ui.common import current_run, lkey, run_predictor, runs_dir, server_threads, set_current_run

st.title(_("6 · Predict"))


@st.cache_resource(max_entries=2, show_spinner=False)
def imagenet_predictor(backbone: str) -> Predictor:
    server_threads()
    return Predictor.imagenet(backbone)


@st.cache_resource(max_entries=2, show_spinner=False)
def shared_predictor(digest: str, _data: bytes, name: str) -> BundlePredictor:
    """A bundle zip made elsewhere; never trusted (TorchScript refused). The model is in memory once
    opened, so its unpacked folder goes right away."""
    with tempfile.TemporaryDirectory(prefix="tl-shared-") as tmp:
        return BundlePredictor(unpack_bundle(_data, Path(tmp) / "bundle", name), trust=False)


finished = [RunDir(p.parents[1]) for p in sorted(runs_dir().glob("*/checkpoints/best.pt"), reverse=True)]
current = current_run()
options = ["imagenet", "shared"] + [r.id for r in finished]
default = options.index(current.id) if current is not None and current.id in options else (2 if finished else 0)
choice = st.selectbox(_("Model"), options, index=default, key=lkey("p_model"),
                      format_func=lambda o: _("The pretrained network as it is (1000 ImageNet labels)",
                                              ) if o == "imagenet"
                      else _("A model shared with me (an exported bundle .zip)") if o == "shared"
                      else f"{o} · {', '.join(read_json(runs_dir() / o / 'labels.json', [])[:5])}…")
try:
    if choice == "imagenet":
        names = list_backbones()
        backbone = st.selectbox(_("Network"), names, index=names.index(DEFAULT_BACKBONE), key="p_backbone")
        with st.spinner(_("Loading the pretrained network…")):
            predictor = imagenet_predictor(backbone)
    elif choice == "shared":
        shared = st.file_uploader(_("Bundle zip (exported as ONNX or web page, by this app here or elsewhere)"),
                                  type=["zip"], key="p_bundle")
        if shared is None:
            st.info(_("Upload the .zip of an exported model. ONNX and web bundles open; TorchScript bundles run "
                      "their own code when opened, so an uploaded one is refused."))
            st.stop()
        data = shared.getvalue()
        predictor = shared_predictor(hashlib.sha256(data).hexdigest(), data, shared.name)
        card = predictor.info
        st.caption(_("Shared model: {labels} · {backbone} · data set `{data}` · exported {created}",
                     labels=", ".join(predictor.labels), backbone=card.get("backbone"), data=card.get("data"),
                     created=card.get("created")))
    else:
        run = RunDir(runs_dir() / choice)
        if current is None or current.id != choice:
            set_current_run(choice)
        predictor = run_predictor(run)
        if run_state(run) != "succeeded":
            st.caption(_("This run is {state}: using its best checkpoint so far.", state=_(run_state(run))))
except (TLError, OSError) as exc:
    st.error(_("Cannot load this model: {error}", error=exc))
    st.stop()

explain = choice not in ("imagenet", "shared") and st.toggle(_("Show where the model looked (Grad-CAM heat map)"), key="p_cam")
k = st.slider(_("How many guesses to show"), 1, min(10, len(predictor.labels)), min(5, len(predictor.labels)),
              key="p_topk")
cal, threshold = (bundle_threshold(predictor.info) if choice == "shared"
                  else sure_threshold(run if choice != "imagenet" else None))
tab_upload, tab_camera, tab_live = st.tabs([_("Upload photos"), _("Webcam"), _("Live camera")])
with tab_upload:
    files = st.file_uploader(_("Photos"), type=["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"],
                             accept_multiple_files=True, key="p_files")
with tab_camera:
    shot = st.camera_input(_("Take a photo"), key="p_camera")
with tab_live:
    if choice not in ("imagenet", "shared"):
        on_device_hint(run)
    live_predict(predictor, k, cal=cal, threshold=threshold)

images = [(f.name, f.getvalue()) for f in files or []] + ([(_("webcam"), shot.getvalue())] if shot else [])
for i, (name, data) in enumerate(images):
    cols = st.columns([1, 1, 2] if explain else [1, 2])
    c1, c2 = cols[0], cols[-1]
    try:
        img = load_rgb(data)
    except ImageReadError as exc:
        st.error(f"{name}: {exc}")
        continue
    top, said = calibrated_top(predictor, img, k, cal, threshold)
    c1.image(img, caption=name, width="stretch")
    if explain:
        heat = predictor.explain(img)[0]
        cols[1].image(heat, caption=_("Red: the parts that made it say '{label}'", label=top[0]["label"]),
                      width="stretch")
    c2.markdown(f"**{top[0]['label']}** ({top[0]['prob']:.1%})" if said else
                _("**{not_sure}** (best guess: {label}, {p:.1%})", not_sure=not_sure_text(), label=top[0]["label"],
                  p=top[0]["prob"]))
    c2.plotly_chart(top_k(top), width="stretch", key=f"pred-{i}", config={"displayModeBar": False})
    c2.caption(describe_top_k(top))
if not images:
    tab_upload.info(_("Upload one or more photos, or take one with the webcam."))
