"""Collect a data set with the camera: name the classes, hold a button to record each one, remove bad
frames; saved as one folder of JPEGs per class in your data root, ready for the Data page."""

import streamlit as st

from tl_core import capture
from tl_core.errors import TLError
from tl_core.i18n import _, ngettext
from ui.camera import camera
from ui.common import check_space, data_root, next_step, wizard

w = wizard()
st.title(_("Collect images with the camera"))
st.write(_("Name a class, pick it, then **hold the button** while you show it to the camera (about 8 photos "
           "a second; move it around a little). Collect at least 30 images per class, for two classes or more."))
st.caption(_("Your images are stored on the computer that runs this app (the teacher's in a classroom), "
             "nowhere else. Delete a class here, or everything with *Clear my workspace*."))

existing = capture.list_datasets(data_root())
name = st.text_input(_("Data set name"), value=st.session_state.get("c_dataset") or (existing or ["my-classes"])[-1],
                     max_chars=40, key="c_dataset")
try:
    dataset = capture.dataset_dir(data_root(), name)
except TLError as exc:
    st.error(str(exc))
    st.stop()


def add_class() -> None:
    try:
        capture.add_class(dataset, st.session_state["c_new"])
        st.session_state["c_class"] = capture.folder_name(st.session_state["c_new"])
        st.session_state["c_new"] = ""
    except TLError as exc:
        st.session_state["c_error"] = str(exc)


def saved_frames() -> None:
    state = st.session_state["c_cam"]
    burst = (state.get("frames") if isinstance(state, dict) else getattr(state, "frames", None)) or {}
    frames = burst.get("images") or []
    try:
        saved, problems = capture.save_frames(dataset, burst.get("cls") or "", frames, check=check_space)
    except TLError as exc:
        st.session_state["c_error"] = str(exc)
        return
    st.session_state["c_saved"] = (burst.get("cls"), len(saved), problems)


c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
c1.text_input(_("New class"), key="c_new", placeholder=_("e.g. thumbs up"), max_chars=40)
c2.button(_("Add class"), on_click=add_class, key="c_add", width="stretch")
if err := st.session_state.pop("c_error", None):
    st.error(err)
names = capture.classes(dataset)
if not names:
    st.info(_("Add a first class to start recording."))
    st.stop()
if st.session_state.get("c_class") not in names:
    st.session_state["c_class"] = names[0]
counts = {c: len(capture.images(dataset, c)) for c in names}
# Counts are not in the options' labels: a keyed radio whose labels change shows no selection.
cls = st.radio(_("Record into"), names, key="c_class", horizontal=True)
st.caption(" · ".join(ngettext("**{cls}**: {n} image", "**{cls}**: {n} images", n, cls=c) for c, n in counts.items()))
camera("c_cam", {"mode": "record", "cls": cls, "fps": 8, "text": {
    "hold": _("Hold to record '{cls}'", cls=cls), "recording": _("Recording… {n}", n="{n}"),
    "photos": _("Add photos"), "no_camera": _("No camera available: add photos instead."),
    "camera": _("Camera"), "start": "", "stop": "", "stats": ""}}, on_frames_change=saved_frames)
if saved := st.session_state.pop("c_saved", None):
    st.success(ngettext("Saved {n} image to '{cls}'.", "Saved {n} images to '{cls}'.", saved[1], cls=saved[0]))
    for problem in saved[2][:5]:
        st.warning(problem)

st.subheader(_("Your classes"))
for c in names:
    files = capture.images(dataset, c)
    with st.expander(ngettext("{cls}: {n} image", "{cls}: {n} images", len(files), cls=c), expanded=c == cls):
        if not files:
            st.caption(_("No images yet."))
        cols = st.columns(8)
        for i, path in enumerate(files[-16:][::-1]):  # the newest first: a bad frame is usually recent
            with cols[i % 8]:
                st.image(str(path), width="stretch")
                if st.button(":material/delete:", key=f"c_rm.{c}.{path.name}", help=_("Remove this image")):
                    capture.remove_image(dataset, path)
                    st.rerun()
        if len(files) > 16:
            st.caption(_("Showing the newest 16 of {n}.", n=len(files)))
        if st.checkbox(_("Delete the class '{cls}' and its images", cls=c), key=f"c_del_ok.{c}"):
            if st.button(_("Delete class"), key=f"c_del.{c}"):
                capture.remove_class(dataset, c)
                st.rerun()

ready = sum(n >= 5 for n in counts.values()) >= 2
if st.button(_("Use this data set"), type="primary", disabled=not ready, key="c_use"):
    w["data_dir"], w["source"] = str(dataset), "server"
    st.success(_("Chosen: the Data page checks it next."))
if not ready:
    st.caption(_("Two classes with at least 5 images each are needed (30 or more each work much better)."))
next_step(_("check the images"), "pages/data.py")
