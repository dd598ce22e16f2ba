"""Step 2: pick the images (bundled sample, a folder on the server, or a zip) and check them."""

import secrets
from pathlib import Path

import streamlit as st

from tl_core.data import scan_folder, validate
from tl_core.errors import TLError
from tl_core.figures import class_counts, describe_counts
from tl_core.glossary import glossary_markdown
from tl_core.i18n import _, language, ngettext
from tl_core.measure import explain_measurement, measure, size_of
from tl_core.opendata import OPEN_DATASETS, import_dataset
from tl_core.splits import make_split, split_summary
from tl_core.paths import data_folders
from tl_core.zips import extract_images, prune_uploads, unpacked_size
from tl_core.runs import data_in_use
from ui.data_tools import background_hint, duplicates_section, embedding_section, suspects_section
from ui.common import SAMPLE_DATA, check_space, space_used, data_root, lkey, next_step, runs_dir, wizard

w = wizard()
st.title(_("2 · Data: your images, one folder per class"))
st.write(_("Put the images of each class in its own folder (`cats/`, `dogs/`, ...). The folder names become the "
           "labels."))


@st.cache_data(ttl=30, show_spinner=False)
def check(path: str, lang: str) -> dict:  # lang: the report's messages are in the reader's language
    report, clean = validate(scan_folder(path))
    samples = {c: [it.path for it in clean.items if it.label == i][:6] for i, c in enumerate(clean.classes)}
    split = split_summary(make_split(clean), clean.classes) if report.ok else {}
    return {"report": report.to_dict(), "samples": samples, "split": split}


@st.cache_data(ttl=10, show_spinner=False)
def listed_folders(root: str) -> tuple[list[str], list[str]]:
    return data_folders(root)


sources = ["sample", "server", "upload", "open"]
source = w["source"] = st.radio(_("Where are the images?"), sources, index=sources.index(w.get("source", "sample")),
                                horizontal=True, key=lkey("d_source"),
                  format_func={"sample": _("Bundled sample (hand signs 0-9)"), "server": _("A folder on this server"),
                               "upload": _("Upload a zip"), "open": _("A classic open data set")}.get)
if source == "sample":
    st.caption(_("200 photos of hands showing the digits 0-9 (20 per class), from the Sign Language Digits "
                 "Dataset by Arda Mavi et al., Apache-2.0."))
    st.caption(_("Tip: hand-sign close-ups are not like ImageNet photos. Answering *small + different* on the Plan "
                 "page (scenario 3) reached 90% test accuracy on this sample in about a minute here; the frozen "
                 "feature extractor of scenario 1 reached 77% in half a minute. Try both and compare them on Runs."))
    if st.button(_("Use the sample data"), type="primary", key="d_use_sample"):
        w["data_dir"] = str(SAMPLE_DATA)
elif source == "server":
    root = data_root()
    choices, linked = listed_folders(str(root))
    st.caption(_("Folders under the data root `{root}` (set `TL_DATA_ROOT` to change it).", root=root))
    if linked:
        st.info(ngettext("{n} linked folder is not offered ({names}): it leads outside the data root, and a link could "
                         "expose any folder of this server. To use a data set on another disk, start the app with "
                         "`TL_DATA_ROOT` set to the folder that holds it.",
                         "{n} linked folders are not offered ({names}): they lead outside the data root, and a link "
                         "could expose any folder of this server. To use data sets on another disk, start the app "
                         "with `TL_DATA_ROOT` set to the folder that holds them.", len(linked), names=", ".join(linked[:5])))
    if choices:
        pick = st.selectbox(_("Folder"), choices, key="d_folder")
        if st.button(_("Use this folder"), type="primary", key="d_use_folder"):
            w["data_dir"] = str((root / pick).resolve())
    else:
        st.info(_("No folders under {root} yet: copy a data set there, or upload a zip.", root=root))
elif source == "open":
    st.caption(_("The data sets of the method's textbook, downloaded once through torchvision and written as "
                 "one folder of PNG images per class (train/ and test/) under the data root."))
    name = st.selectbox(_("Data set"), list(OPEN_DATASETS), key=lkey("d_open"),
                        format_func=lambda n: f"{OPEN_DATASETS[n][0]}: {_(OPEN_DATASETS[n][1])}")
    per_class = st.number_input(_("Images per class and split (0 = all; a few hundred train in minutes here)"),
                                0, 10000, 300, step=50, key="d_open_n")
    dest = data_root() / (f"{name}-{per_class}" if per_class else name)
    if dest.is_dir() and any(dest.iterdir()):
        st.caption(_("Already imported: `{name}`.", name=dest.name))
        if st.button(_("Use it"), type="primary", key="d_open_use"):
            w["data_dir"] = str(dest)
    elif st.button(_("Download and import"), type="primary", key="d_open_go"):
        bar = st.progress(0.0, text=_("Starting…"))

        def show(what: str, done: int, total: int) -> None:
            bar.progress(min(done / total, 1.0) if total else 0.0,
                         text=_("{what}: {done:,} of {total:,}", what=what, done=done, total=total) if total
                         else f"{what}: {done:,}")

        try:
            # Classroom mode: the workspace's quota counts the PNGs as they are written.
            used = space_used()  # measured once: the import adds what it writes
            import_dataset(name, dest, per_class=per_class or None, progress=show,
                           check=lambda written: check_space(written, used))
            bar.progress(1.0, text=_("Done"))
            w["data_dir"] = str(dest)
        except TLError as exc:
            bar.empty()
            st.error(str(exc))
else:
    up = st.file_uploader(_("Zip of class folders"), type=["zip"], key="d_zip")
    if up is not None and st.button(_("Unpack and use"), type="primary", key="d_unzip"):
        uploads = data_root() / "uploads"
        prune_uploads(uploads, keep=data_in_use(runs_dir()) | ({w["data_dir"]} if w["data_dir"] else set()))
        dest = uploads / f"{Path(up.name).stem[:40]}-{secrets.token_hex(3)}"
        try:
            check_space(unpacked_size(up.getvalue()))  # classroom mode: the quota counts what is unpacked
            folder, skipped = extract_images(up.getvalue(), dest)
            w["data_dir"] = str(folder)
            if skipped:
                st.warning(ngettext("Skipped {n} entry of the zip:", "Skipped {n} entries of the zip:", len(skipped))
                           + "\n\n- " + "\n- ".join(skipped[:20]))
        except TLError as exc:
            st.error(str(exc))

if not w["data_dir"]:
    st.info(_("Choose a data set above to continue."))
    st.stop()

try:
    with st.spinner(_("Checking every image…")):
        info = check(w["data_dir"], language())
except TLError as exc:
    st.error(str(exc))
    w["data_dir"] = w["data_ready"] = None  # a folder that cannot be read is not "chosen": Train stays off
    st.stop()
rep = info["report"]
w["data_ready"] = rep["ok"]
st.subheader(_("`{name}`: {classes} classes, {images} usable images", name=Path(w["data_dir"]).name,
               classes=len(rep["classes"]), images=sum(rep["counts"].values())))
for issue in rep["issues"]:
    # Paths relative to the data set: shorter, and the server's folder layout stays private.
    (st.error if issue["level"] == "error" else st.warning)(issue["message"].replace(w["data_dir"].rstrip("/") + "/", ""))
    if len(issue["paths"]) > 1:
        with st.expander(_("{n} files", n=len(issue["paths"]))):
            st.code("\n".join(p.replace(w["data_dir"].rstrip("/") + "/", "") for p in issue["paths"][:200]))
if rep["ok"]:
    st.success(_("Ready to train. (see the warnings above)") if rep["issues"] else _("Ready to train."))
size, per_class = size_of(rep["counts"])
st.caption(_("About {n} images per class (median): that is a **{size}** data set for this method (you answered "
             "*{answer}* on the Plan page).", n=per_class, size=_(size), answer=_(w["size"])))


@st.cache_data(show_spinner=False)
def measured(path: str, backbone: str) -> dict:
    return measure(path, backbone)


if st.button(_("Measure size and similarity to ImageNet on these images"), key="d_measure"):
    with st.spinner(_("Measuring on a sample of your images (a few seconds)…")):
        st.session_state["measured"] = (w["data_dir"], measured(w["data_dir"], w["backbone"]))
measured_for, m = st.session_state.get("measured", (None, None))
if measured_for == w["data_dir"]:
    st.info(explain_measurement(m, (w["size"], w["similarity"])))
    with st.expander(_("What these numbers mean")):
        st.markdown(glossary_markdown(["imagenet_confidence", "knn"]))
    if (m["size"], m["similarity"]) != (w["size"], w["similarity"]) and st.button(
            _("Use the measured answers on the Plan page"), key="d_use_measured"):
        w["size"], w["similarity"], w["scenario"] = m["size"], m["similarity"], None
        st.rerun()
embedding_section(w)
c1, c2 = st.columns([3, 2])
c1.plotly_chart(class_counts(rep["counts"]), width="stretch", config={"displayModeBar": False})
c1.caption(describe_counts(rep["counts"]))
if info["split"]:
    c2.write(_("**Split** (stratified, seed 0): the test images are never used for training."))
    split = info["split"]
    parts = {"train": _("train"), "val": _("validation"), "test": _("test")}
    c2.dataframe([{_("class"): c, **{title: split[part][c] for part, title in parts.items()}} for c in rep["classes"]],
                 width="stretch", hide_index=True)
st.write(_("**Examples per class**"))
for cls, paths in list(info["samples"].items())[:12]:
    if paths:
        st.image(paths, caption=[cls] * len(paths), width=96)
background_hint(rep["classes"])
st.divider()
suspects_section(w, rep["classes"], check.clear)
duplicates_section(w, check.clear)
next_step(_("choose the network"), "pages/model.py")
