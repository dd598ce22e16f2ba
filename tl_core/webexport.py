"""The web export: an ONNX bundle plus ``index.html`` that runs the model in any browser, opened
by double-click from ``file://`` with no server and no network.

``file://`` pages may run classic ``<script>`` files but may not ``fetch`` anything, and get no
SharedArrayBuffer; so the runtime (onnxruntime-web's UMD build, vendored in ``vendor/``), its
WebAssembly (gzipped, base64) and the model (base64) are scripts, and the runtime runs on one
thread. The page's words come from the message catalogue here, in English and Korean.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import shutil
from pathlib import Path

from .errors import RunError
from .i18n import LANGUAGES, N_, _, catalog

VENDOR = Path(__file__).resolve().parents[1] / "vendor" / "onnxruntime-web"
PAGE = Path(__file__).resolve().parent / "web"
PAGE_FILES = ("index.html", "app.js", "preprocess.js", "style.css")
RUNTIME_JS, RUNTIME_MJS, RUNTIME_WASM_GZ = "ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm.gz"
WEB_FILES = (*PAGE_FILES, RUNTIME_JS, "runtime.js", "model.js", "bundle.js", "LICENSE-onnxruntime-web.txt")

STRINGS = {
    "title": N_("Image classifier: {labels}"),
    "privacy": N_("Runs on this device only: no photo or camera image leaves it, and the page works without "
                  "internet."),
    "loading": N_("Loading the model…"),
    "ready": N_("Model ready."),
    "failed": N_("The model could not be loaded in this browser: {error}"),
    "tab_photos": N_("Photos"),
    "tab_camera": N_("Live camera"),
    "drop_here": N_("Choose photos, or drop them here"),
    "camera_start": N_("Start the camera"),
    "camera_stop": N_("Stop the camera"),
    "camera_flip": N_("Switch camera"),
    "camera_denied": N_("No camera: {error}. Allow the camera for this page, or use photos."),
    "speed": N_("{fps} predictions per second ({ms} ms each)"),
    "verdict": N_("{label} ({pct}%)"),
    "not_sure_best": N_("Not sure (best guess: {label}, {pct}%)"),
    "cannot_read": N_("{name}: this file cannot be read as an image ({error})"),
    "card_title": N_("About this model"),
    "card_labels": N_("Classes"),
    "card_data": N_("Data set"),
    "card_scenario": N_("Transfer scenario"),
    "card_backbone": N_("Pretrained network"),
    "card_accuracy": N_("Test accuracy"),
    "card_date": N_("Exported"),
    "card_int8": N_("Smaller model (int8)"),
    "card_not_sure": N_("Not sure"),
    "int8_summary": N_("test accuracy {int8} (the full model: {fp32}), {ratio}x smaller"),
    "not_sure_rule": N_("said when the best class is below {pct}% (chosen on the validation photos)"),
    "on_images": N_("on {n} test photos"),
    "not_evaluated": N_("not measured"),
    "pre_title": N_("What the model sees"),
    "pre_text": N_("Each picture is turned upright (EXIF), resized so its shorter side is {resize} pixels "
                   "({interp}, antialiased), cut to the central {crop} x {crop} square, then scaled to 0..1 and "
                   "normalised (mean {mean}, std {std}) inside the model: the same steps as the app."),
    "limits": N_("The model only knows the classes above: any picture gets one of them, however unrelated. "
                 "Photos unlike the training ones (other cameras, light, backgrounds) may do worse."),
    "footer": N_("Made with the transfer learning app; runs with onnxruntime-web (MIT licence)."),
}


def page_strings() -> dict[str, dict[str, str]]:
    """Every page text in every language (English is the message id itself)."""
    return {lang: {k: catalog(lang).get(v, v) for k, v in STRINGS.items()} for lang in LANGUAGES}


def _vendor_bytes() -> tuple[bytes, bytes, bytes, dict]:
    """The vendored runtime, its glue module and its gzipped WebAssembly, checked against ``VERSION.json``."""
    meta_file = VENDOR / "VERSION.json"
    try:
        meta = json.loads(meta_file.read_text())
        js, mjs = (VENDOR / RUNTIME_JS).read_bytes(), (VENDOR / RUNTIME_MJS).read_bytes()
        wasm_gz = (VENDOR / RUNTIME_WASM_GZ).read_bytes()
    except (OSError, ValueError) as exc:
        raise RunError(_("the web runtime in {folder} is missing or unreadable ({exc}); restore the vendor/ folder "
                         "from the repository (git checkout -- vendor)", folder=VENDOR, exc=exc)) from None
    files = meta["files"]
    if (hashlib.sha256(js).hexdigest() != files[RUNTIME_JS]["sha256"]
            or hashlib.sha256(mjs).hexdigest() != files[RUNTIME_MJS]["sha256"]
            or hashlib.sha256(gzip.decompress(wasm_gz)).hexdigest() != files[RUNTIME_WASM_GZ]["sha256_unpacked"]):
        raise RunError(_("the web runtime in {folder} does not match the checksums in VERSION.json; restore it "
                         "(git checkout -- vendor)", folder=VENDOR))
    return js, mjs, wasm_gz, meta


# The glue finds its .wasm next to itself with ``new URL(name, import.meta.url)`` even when it is given the
# bytes; from a ``data:`` URL that throws. The file name alone is never fetched (``wasmBinary`` is set).
GLUE_WASM_URL = b'(new URL("ort-wasm-simd-threaded.wasm",import.meta.url)).href'


def _glue_for_data_url(mjs: bytes) -> bytes:
    if mjs.count(GLUE_WASM_URL) != 1:
        raise RunError(_("the vendored onnxruntime-web glue has changed (no single wasm URL to replace); check "
                         "vendor/onnxruntime-web/README.md"))
    return mjs.replace(GLUE_WASM_URL, b'"ort-wasm-simd-threaded.wasm"')


def _script(name: str, data: bytes) -> str:
    return f"window.{name}=\"{base64.b64encode(data).decode('ascii')}\";\n"


def write_page(folder: Path, info: dict) -> None:
    """Write the page's files next to the bundle's ``model.onnx`` in ``folder``."""
    js, mjs, wasm_gz, meta = _vendor_bytes()
    for name in PAGE_FILES:
        shutil.copyfile(PAGE / name, folder / name)
    (folder / RUNTIME_JS).write_bytes(js)
    (folder / "runtime.js").write_text(_script("TL_RUNTIME_GZ_B64", wasm_gz) + _script("TL_GLUE_B64", _glue_for_data_url(mjs)))
    (folder / "model.js").write_text(_script("TL_MODEL_B64", (folder / info["model_file"]).read_bytes()))
    page_info = {k: v for k, v in info.items() if k not in ("parity",)}
    payload = {"info": page_info, "strings": page_strings(), "runtime": meta["version"]}
    (folder / "bundle.js").write_text("window.TL_BUNDLE=" + json.dumps(payload, ensure_ascii=False) + ";\n",
                                      encoding="utf-8")
    shutil.copyfile(VENDOR / "LICENSE", folder / "LICENSE-onnxruntime-web.txt")
