"""Data page sections that look inside the images with the frozen features: suspect labels (and
what the user decides about them). Each section is one function the page calls."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import streamlit as st

from tl_core.backbones import DEFAULT_BACKBONE
from tl_core.curation import load_curation, move_to_class, set_excluded, set_kept, undo_move
from tl_core.errors import TLError
from tl_core.i18n import _, ngettext
from tl_core.paths import is_inside
from ui.common import data_root

PAGE = 12  # suspects shown per "show more" (four rows of three)


def _state(data_dir: str) -> dict:
    """This session's suspects of ``data_dir``: the list and what was done to each row."""
    s = st.session_state.get("suspects")
    if not s or s["data"] != data_dir:
        s = st.session_state["suspects"] = {"data": data_dir, "result": None, "done": {}, "shown": PAGE, "error": ""}
    return s


def _act(s: dict, on_change: Callable[[], None], action: Callable[[], object], done) -> None:
    """Run one curation action from a button's callback; keep its outcome (or its error) for the page.
    The data set is checked again here: a disabled button's click can still reach the server."""
    if not is_inside(data_root(), s["data"]):
        s["error"] = _("{folder} is outside your data root: nothing was changed.", folder=Path(s["data"]).name)
        return
    try:
        outcome = action()
    except TLError as exc:
        s["error"] = str(exc)
        return
    s["error"] = ""
    if done is not None:
        s["done"].update(done(outcome))
    on_change()


def suspects_section(w: dict, classes: list[str], on_change: Callable[[], None]) -> None:
    """Find images whose label the rest of the data set disagrees with; move, exclude or keep them.

    Args:
        w: the wizard (``data_dir``, ``backbone``).
        classes: the data set's classes (move targets).
        on_change: called after the data set changed (clears the page's cached check).
    """
    data_dir = w["data_dir"]
    s = _state(data_dir)
    st.write(_("**Suspect labels**: every image is judged by a small classifier trained on the frozen features "
               "of all the *other* images (5 folds). Images whose folder the others disagree with come first."))
    if st.button(_("Find suspect labels"), key="d_suspects"):
        from tl_core.suspects import find_suspects

        bar, progress = _feature_bar()
        try:
            s.update(result=find_suspects(data_dir, w["backbone"], progress=progress), done={}, shown=PAGE, error="")
        except TLError as exc:
            s["error"] = str(exc)
        bar.empty()
    if s["error"]:
        st.error(s["error"])
    editable = is_inside(data_root(), data_dir)
    if not editable:
        st.caption(_("This data set is outside the data root (e.g. the bundled sample): it is shown read-only. Copy "
                     "it under the data root to move or exclude images."))
    _excluded_list(data_dir, s, on_change, editable)
    r = s["result"]
    if r is None:
        return
    st.caption(ngettext("{n} of {images} images looks mislabelled ({seconds:.0f} s).",
                        "{n} of {images} images look mislabelled ({seconds:.0f} s).", r["flagged"],
                        images=r["images"], seconds=r["seconds"]))
    rows = r["suspects"][:s["shown"]]
    for i in range(0, len(rows), 3):
        for col, row in zip(st.columns(3), rows[i:i + 3]):
            with col.container(border=True):
                _suspect_card(data_dir, row, classes, s, on_change, editable)
    if len(r["suspects"]) > s["shown"] and st.button(_("Show more"), key="d_suspects_more"):
        s["shown"] += PAGE
        st.rerun()


def _suspect_card(data_dir: str, row: dict, classes: list[str], s: dict, on_change, editable: bool) -> None:
    root, rel = Path(data_dir), row["path"]
    done = s["done"].get(rel)
    shown = root / (done["to"] if done and done.get("to") else rel)
    if shown.is_file():
        st.image(str(shown), width="stretch")
    st.caption(_("labelled **{given}** ({p_given:.0%}), looks like **{likely}** ({p_likely:.0%})", **row))
    st.caption(f"`{rel}`")
    if done:
        st.success({"moved": _("moved to {c}", c=done.get("class", "")), "excluded": _("excluded"),
                    "kept": _("kept")}[done["what"]])
        undo = {"moved": lambda: undo_move(root, root / done["to"]),
                "excluded": lambda: set_excluded(root, [rel], excluded=False),
                "kept": lambda: set_kept(root, [rel], kept=False)}[done["what"]]
        st.button(_("Undo"), key=f"d_undo_{rel}", disabled=not editable,
                  on_click=_act, args=(s, on_change, undo, lambda _o: {rel: None}))
        return
    others = [c for c in classes if c != row["given"]]
    target = st.selectbox(_("Move to class"), others, index=others.index(row["likely"]) if row["likely"] in others
                          else 0, key=f"d_to_{rel}", disabled=not editable)
    st.button(_("Move"), key=f"d_move_{rel}", disabled=not editable, width="stretch", on_click=_act, args=(
        s, on_change, lambda: move_to_class(root, rel, target, classes),
        lambda new: {rel: {"what": "moved", "class": target, "to": str(Path(new).relative_to(root))}}))
    c2, c3 = st.columns(2)
    c2.button(_("Exclude"), key=f"d_excl_{rel}", disabled=not editable, width="stretch", on_click=_act, args=(
        s, on_change, lambda: set_excluded(root, [rel]), lambda _o: {rel: {"what": "excluded"}}))
    c3.button(_("Keep"), key=f"d_keep_{rel}", disabled=not editable, width="stretch", on_click=_act, args=(
        s, on_change, lambda: set_kept(root, [rel]), lambda _o: {rel: {"what": "kept"}}))


def _excluded_list(data_dir: str, s: dict, on_change, editable: bool) -> None:
    """The images excluded so far, each with a way back."""
    excluded = load_curation(data_dir).excluded
    if not excluded:
        return
    with st.expander(ngettext("{n} excluded image", "{n} excluded images", len(excluded))):
        for rel in excluded:
            c1, c2 = st.columns([4, 1])
            c1.caption(f"`{rel}`")
            c2.button(_("Include again"), key=f"d_incl_{rel}", disabled=not editable, on_click=_act, args=(
                s, on_change, lambda rel=rel: set_excluded(data_dir, [rel], excluded=False),
                lambda _o, rel=rel: {rel: None}))


def _feature_bar():
    """A progress bar for a feature pass, and the callback that moves it; ``bar.empty()`` when done."""
    bar = st.progress(0.0, text=_("Computing features (cached for training)…"))
    return bar, lambda done, total: bar.progress(done / max(total, 1),
                                                 text=_("Computing features (cached for training)…"))


def duplicates_section(w: dict, on_change: Callable[[], None]) -> None:
    """Find near-identical images (feature distance) and keep each group on one side of the split."""
    data_dir = w["data_dir"]
    st.write(_("**Near duplicates**: the same photo resized, recompressed or slightly cropped has almost the same "
               "features. One copy in training and another in the test part makes the test score look better "
               "than it is."))
    editable = is_inside(data_root(), data_dir)
    if st.button(_("Find near duplicates"), key="d_dups", disabled=not editable,
                 help=None if editable else _("Copy the data set under the data root first.")) and editable:
        from tl_core.neardup import find_near_duplicates

        bar, progress = _feature_bar()
        try:
            # Always the default backbone: the similarity threshold was measured on its features.
            st.session_state["near_dups"] = (data_dir, find_near_duplicates(data_dir, DEFAULT_BACKBONE,
                                                                            progress=progress))
            on_change()  # the split shown above now keeps the groups together
        except TLError as exc:
            st.error(str(exc))
        bar.empty()
    found_for, r = st.session_state.get("near_dups", (None, None))
    if found_for != data_dir:
        return
    if r["too_alike"]:
        st.warning(_("The photos of this data set all look alike to the network (many pairs above similarity {t}): "
                     "copies cannot be told apart from different photos by their features, so nothing was grouped.",
                     t=r["threshold"]))
        return
    if not r["groups"]:
        st.success(_("No near duplicates among {images} images (cosine similarity of features below {t}).",
                     images=r["images"], t=r["threshold"]))
        return
    spread = sum(len(set(g["parts"])) > 1 for g in r["groups"])
    st.info(_("{n} group(s) of near-identical images; {spread} of them were spread over train/validation/test by "
              "the split. From now on each group stays on one side of every split of this data set.",
              n=len(r["groups"]), spread=spread))
    parts = {"train": _("train"), "val": _("validation"), "test": _("test"), "": ""}
    for g in r["groups"][:24]:
        paths = [str(Path(data_dir) / p) for p in g["paths"]][:6]
        st.image([p for p in paths if Path(p).is_file()], width=110,
                 caption=[f"{c} · {parts.get(part, part)}" for c, part, p in zip(g["classes"], g["parts"], paths)
                          if Path(p).is_file()])
        st.caption(_("similarity {s:.3f}", s=g["similarity"])
                   + (_(" · different labels: check them") if len(set(g["classes"])) > 1 else ""))


BACKGROUND_NAMES = ("background", "none", "nothing", "other", "others", "unknown")


def background_hint(classes: list[str]) -> None:
    """Guide the user to a "none of these" class: a classifier always picks one of its classes."""
    have = [c for c in classes if c.strip().lower().replace("_", " ") in BACKGROUND_NAMES]
    if have:
        st.caption(_("Class '{c}' catches photos of none of the other classes: good.", c=have[0]))
        return
    with st.expander(_("Tip: add a \"background / none of these\" class")):
        st.write(_("A classifier always answers with one of its classes, even for a photo of something else. Two "
                   "things help it say so instead:\n\n"
                   "1. A folder named `background` with photos of what the camera will also see: the empty scene, "
                   "other objects, people, about as many as a typical class, as varied as you can.\n"
                   "2. The \"not sure\" threshold on Predict (measured on the validation images after training)."))


def embedding_section(w: dict) -> None:
    """The 2-D map of the frozen features, coloured by class; selected points show their photos."""
    data_dir = w["data_dir"]
    if st.button(_("Show what the network sees (map of the features)"), key="d_map"):
        from tl_core.embedding import embedding_map

        bar, progress = _feature_bar()
        try:
            st.session_state["emb_map"] = (data_dir, embedding_map(data_dir, w["backbone"], progress=progress))
        except TLError as exc:
            st.error(str(exc))
        bar.empty()
    shown_for, m = st.session_state.get("emb_map", (None, None))
    if shown_for != data_dir:
        return
    from tl_core.figures import embedding_scatter

    st.caption(_("Each dot is one photo as the pretrained network sees it, flattened to 2-D (PCA); close dots look "
                 "alike to it. Separate clouds: a new head on frozen features is enough. Mixed clouds: fine-tune, "
                 "or look at the photos where they mix. Select dots (click or drag a box) to see the photos."))
    st.info(m["summary"])
    event = st.plotly_chart(embedding_scatter(m), width="stretch", key="d_map_chart", on_select="rerun",
                            selection_mode=("points", "box", "lasso"), config={"displayModeBar": False})
    picked = [p["customdata"][1] for p in (event.selection.points if event else []) if p.get("customdata")][:24]
    if picked:
        st.image([m["paths"][i] for i in picked], width=96, caption=[m["classes"][m["labels"][i]] for i in picked])
