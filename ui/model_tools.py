"""Model page sections: the augmentation preview. Each section is one function the page calls."""

from __future__ import annotations

import streamlit as st

from tl_core.backbones import get_backbone
from tl_core.data import scan_folder
from tl_core.errors import TLError
from tl_core.i18n import _


def augmentation_preview(w: dict, level: str) -> None:
    """Eight versions of one of the user's images at augmentation ``level``, as training sees them."""
    with st.expander(_("Preview: what augmentation \"{level}\" does to one of your images", level=_(level))):
        try:
            paths = [it.path for it in scan_folder(w["data_dir"]).items] if w["data_dir"] else []
        except TLError:
            paths = []
        if not paths:
            st.caption(_("Choose a data set on the Data page first."))
            return
        pick = st.session_state.get("m_aug_pick", 0) % len(paths)
        if st.button(_("Another image"), key="m_aug_next"):
            pick = st.session_state["m_aug_pick"] = (pick + 1 + len(paths) // 7) % len(paths)
        from tl_core.augpreview import augmented_versions

        try:
            pictures = augmented_versions(paths[pick], get_backbone(w["backbone"]).preprocess, level)
        except TLError as exc:
            st.error(str(exc))
            return
        st.image(pictures[:1] if level == "none" else pictures, width=110)  # "none": eight equal pictures
        st.caption(_("No augmentation: the network sees the same centre crop every epoch, so the frozen part runs "
                     "once and is cached.") if level == "none" else
                   _("Each epoch the network sees a new random version like these (crop, flip, colour{extra}); "
                     "the frozen part must then run again every epoch.",
                     extra=_(", rotation, erased patch") if level == "strong" else ""))
