"""Evaluate's "Share the model" section: export (ONNX, TorchScript or a web page; int8 with its cost
measured side by side and a confirmation when it loses accuracy), download, and the web page's
address on this server with a QR code for phones."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from tl_core import settings
from tl_core.classroom import qr_png
from tl_core.errors import TLError
from tl_core.export import export_run, zip_bundle
from tl_core.glossary import explain
from tl_core.i18n import _
from tl_core.quantize import QuantizationLoss
from tl_core.runs import RunDir, read_json
from tl_core.serving import FORMATS, ONNX_FORMATS, is_bundle
from tl_core.sharing import publish_run, published_page, static_url
from ui.common import lkey



@st.cache_data(max_entries=4, show_spinner=False)
def bundle_zip(folder: str, created: str) -> bytes:
    return zip_bundle(folder)


def _export(run: RunDir, fmt: str, int8: bool, accept_loss: bool = False) -> None:
    st.session_state.pop("e_int8_loss", None)
    with st.spinner(_("Exporting and comparing with the app…") if not int8 else
                    _("Exporting, making the int8 model and measuring both on the test photos…")):
        try:
            export_run(run.path, fmt, run.path / f"export-{fmt}", quantize="int8" if int8 else None,
                       accept_loss=accept_loss)
        except QuantizationLoss as exc:
            st.session_state["e_int8_loss"] = {"run": run.id, "fmt": fmt, "comparison": exc.comparison,
                                               "message": str(exc)}
            return
        except TLError as exc:
            st.error(_("Export failed: {error}", error=exc))
            return
    if fmt == "web":
        publish_run(run)


def int8_table(q: dict) -> None:
    """fp32 and int8 side by side: test accuracy, file size, speed here."""
    a, b = q["fp32"], q["int8"]
    rows = [(_("Test accuracy ({n} photos)", n=a["images"]), f"{a['accuracy']:.1%}", f"{b['accuracy']:.1%}"),
            (_("File size"), f"{a['bytes'] / 1e6:.1f} MB", f"{b['bytes'] / 1e6:.1f} MB"),
            (_("Images per second here"), f"{a['images_per_second']:.1f}", f"{b['images_per_second']:.1f}")]
    st.table({_("measure"): [r[0] for r in rows], _("full model (fp32)"): [r[1] for r in rows],
              _("int8"): [r[2] for r in rows]})
    st.caption(_("Same answer as the full model on {agree:.0%} of the test photos; calibrated on {n} training "
                 "photos.", agree=q["top1_agreement"], n=q["calibration_images"]))


def _loss_confirmation(run: RunDir) -> None:
    pending = st.session_state.get("e_int8_loss")
    if not pending or pending["run"] != run.id:
        return
    st.warning(pending["message"], icon=":material/warning:")
    int8_table(pending["comparison"])
    c1, c2 = st.columns(2)
    c1.button(_("Write the int8 model anyway"), key="e_accept_loss", on_click=_export,
              args=(run, pending["fmt"], True, True))
    c2.button(_("Keep the full model"), key="e_keep_fp32", on_click=_export, args=(run, pending["fmt"], False))


def _app_address() -> str:
    if settings.classroom() and settings.join_url():
        return settings.join_url()
    return st.context.url or "http://127.0.0.1:8501/"


def on_device_hint(run: RunDir) -> None:
    """Predict's live camera: the run's web page classifies on the device itself (no server round
    trip, no frame leaves it, as fast as that device): link it, or say how to make it."""
    page = published_page(run)
    if page:
        st.caption(_("Faster, and for phones: this model's web page runs it on the device itself, and no frame "
                     "leaves it: [open the page]({url}).", url=static_url(_app_address(), page)))
    else:
        st.caption(_("Faster, and for phones: export the Web page on Evaluate; it runs the model on the device "
                     "itself, and no frame leaves it."))


def _web_section(run: RunDir, bundle_dir: Path) -> None:
    st.caption(_("Unzip and double-click `index.html`: it classifies photos and the live camera in any browser, "
                 "with no internet and no server; no image leaves the device."))
    published = published_page(run)
    if published:
        url = static_url(_app_address(), published)
        left, right = st.columns([1, 2])
        left.image(qr_png(url), caption=_("Scan to open the page on a phone"), width=220)
        right.markdown(_("**On this server:** [{url}]({url})", url=url))
        right.caption(_("Phones in the room open it at this address (the camera needs the classroom's https "
                        "address). Anyone who has the address can open the page; it holds the model, no photos."))


def share_section(run: RunDir) -> None:
    st.subheader(_("Share the model"))
    st.caption(_("Export a bundle: the model file with its preprocessing inside (input: ordinary RGB pictures), "
                 "`bundle.json` with the labels and a model card `README.md`. Each export is checked: the file must "
                 "give the same answers as this app on sample images, or nothing is written."))
    names = {"onnx": _("ONNX (onnxruntime, any language)"), "torchscript": "TorchScript (PyTorch)",
             "web": _("Web page (any browser, offline)")}
    fmt = st.radio(_("Format"), list(FORMATS), horizontal=True, key=lkey("e_fmt"), format_func=names.get)
    int8 = st.checkbox(_("Smaller int8 model (about 4x smaller; its accuracy is measured against the full model "
                         "before it is written)"), key="e_int8", disabled=fmt not in ONNX_FORMATS)
    bundle_dir = run.path / f"export-{fmt}"
    st.button(_("Export and check"), key="e_export", on_click=_export, args=(run, fmt, int8 and fmt in ONNX_FORMATS))
    _loss_confirmation(run)
    if not is_bundle(bundle_dir):
        return
    info = read_json(bundle_dir / "bundle.json")
    p = info["parity"]
    pct = 100 * p["max_abs_diff"]
    st.success(_("Checked on {n} photos: the exported file gives the same answers as this app (probabilities "
                 "differ by {diff}). Exported {created}.", n=p["images"], created=info["created"],
                 diff=_("less than 0.001 percent points") if pct < 1e-3 else _("{pct:.3f} percent points", pct=pct)),
               icon=":material/verified:")
    if info.get("quantization"):
        st.markdown(_("**int8 model**: measured at export, side by side with the full model"))
        int8_table(info["quantization"])
    with st.expander(_("Expert details: the parity check")):
        st.caption(explain("parity") + " " + _("Largest probability difference {diff:.1e} (allowed {tol:.0e}).",
                                               diff=p["max_abs_diff"], tol=p["tolerance"]))
    st.download_button(_("Download the {fmt} bundle (.zip)", fmt=fmt), bundle_zip(str(bundle_dir), info["created"]),
                       file_name=f"{run.id}-{fmt}.zip", mime="application/zip", key="e_download")
    if fmt == "web":
        _web_section(run, bundle_dir)
