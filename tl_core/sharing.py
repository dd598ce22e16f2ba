"""Models that travel: a bundle zip made elsewhere, opened here; a web export published at an
address of the app (Streamlit's static serving) for the phones of a room.

A shared zip is someone else's file. Only the names an export writes are taken from it (in one
folder, at most ``MAX_BUNDLE_BYTES`` unpacked); then ``serving.BundlePredictor`` applies the trust
policy: ONNX opens, TorchScript (code) only when the caller trusts it, which an upload never does.
"""

from __future__ import annotations

import io
import re
import secrets
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from .errors import ConfigError
from .i18n import _
from .serving import BUNDLE_FILE, FORMATS
from .webexport import WEB_FILES

BUNDLE_NAMES = frozenset({BUNDLE_FILE, "README.md", *FORMATS.values(), *WEB_FILES})
MAX_BUNDLE_BYTES = 400 * 1024**2
STATIC_WEB = "web"  # under the app's static/ folder: /app/static/web/<name>/index.html
PUBLISHED = "web-published.json"  # in a run's folder: where its web page is published


def _members(zf: zipfile.ZipFile, name: str) -> dict[str, zipfile.ZipInfo]:
    """The zip's bundle files by base name, all from one folder; refuses anything else."""
    infos = [i for i in zf.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
    if sum(i.file_size for i in infos) > MAX_BUNDLE_BYTES:
        raise ConfigError(_("{name} unpacks to more than {mb} MB; a model bundle is smaller. Export the model again",
                            name=name, mb=MAX_BUNDLE_BYTES // 1024**2))
    folders = {str(PurePosixPath(i.filename.replace("\\", "/")).parent) for i in infos}
    if len(folders) > 1:
        raise ConfigError(_("{name} holds files in several folders ({folders}); a bundle zip holds one exported "
                            "folder", name=name, folders=", ".join(sorted(folders))))
    members = {PurePosixPath(i.filename.replace("\\", "/")).name: i for i in infos}
    strange = sorted(n for n in members if n not in BUNDLE_NAMES)
    if strange:
        raise ConfigError(_("{name} holds files an export never writes ({files}); only bundles exported by this app "
                            "can be opened", name=name, files=", ".join(strange[:5])))
    if BUNDLE_FILE not in members:
        raise ConfigError(_("{name} has no {file}: it is not an exported model bundle (export one on the Evaluate "
                            "page, then upload its zip)", name=name, file=BUNDLE_FILE))
    return members


def unpack_bundle(data: bytes, dest: str | Path, name: str = "the zip") -> Path:
    """Unpack a bundle zip (bytes) into the new folder ``dest`` and return it.

    Raises:
        ConfigError: not a zip, not a bundle, or something in it that an export never writes.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ConfigError(_("{name} is not a zip file; upload the .zip that the export's download button gave",
                            name=name)) from None
    with zf:
        members = _members(zf, name)
        dest = Path(dest)
        dest.mkdir(parents=True)
        try:
            for base, info in members.items():
                with zf.open(info) as src, open(dest / base, "xb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
            shutil.rmtree(dest, ignore_errors=True)
            raise ConfigError(_("{name} is damaged or cannot be unpacked here ({exc}); download the bundle again",
                                name=name, exc=exc)) from None
    return dest


def open_zip_path(path: str | Path, dest: str | Path):
    """``predict BUNDLE.zip``: the zip unpacked into ``dest``, returned as a folder path."""
    path = Path(path)
    return unpack_bundle(path.read_bytes(), Path(dest) / path.stem, path.name)


PUBLISHED_PATH = re.compile(rf"{STATIC_WEB}/[\w.-]+-[0-9a-f]{{16}}/index\.html")


def published_folder(static_root: str | Path, path: str | None) -> Path | None:
    """The folder of a published page from its recorded ``path``: only the exact form
    ``publish_web`` writes, and only inside ``static_root/web`` (the record is a file on disk: a
    forged one must not name another folder to delete)."""
    if not path or not PUBLISHED_PATH.fullmatch(path) or ".." in path:
        return None
    root = (Path(static_root) / STATIC_WEB).resolve()
    folder = (Path(static_root) / path).parent.resolve()
    return folder if folder.parent == root and folder.is_dir() else None


def publish_web(bundle: str | Path, static_root: str | Path, old: str | None = None) -> str:
    """Copy a web export under the app's ``static/`` folder, in a folder with an unguessable name
    (static files need no login). Removes the previous copy ``old``. Returns the path after
    ``/app/static/``, e.g. ``web/run-x-3f9a.../index.html``."""
    root = Path(static_root) / STATIC_WEB
    previous = published_folder(static_root, old)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
    name = f"{Path(bundle).parent.name}-{secrets.token_hex(8)}"
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    shutil.copytree(bundle, target, ignore=shutil.ignore_patterns("model.onnx"))  # the page needs model.js only
    return f"{STATIC_WEB}/{name}/index.html"


def publish_run(run) -> str:
    """Publish ``run``'s web export (``export-web/``) in place of its previous page; returns the path."""
    from .runs import read_json, write_json_atomic
    from .settings import static_root

    old = read_json(run.path / PUBLISHED, {}).get("path")
    path = publish_web(run.path / "export-web", static_root(), old)
    write_json_atomic(run.path / PUBLISHED, {"path": path})
    return path


def published_page(run) -> str | None:
    """The path (after ``/app/static/``) of ``run``'s published page, None when there is none."""
    from .runs import read_json
    from .settings import static_root

    path = (read_json(run.path / PUBLISHED, {}) or {}).get("path")
    folder = published_folder(static_root(), path)
    return path if folder is not None and (folder / "index.html").is_file() else None


def unpublish(run) -> None:
    """Remove ``run``'s published page (a deleted run's model is not left at an address)."""
    from .runs import read_json
    from .settings import static_root

    folder = published_folder(static_root(), (read_json(run.path / PUBLISHED, {}) or {}).get("path"))
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def static_url(base: str, path: str) -> str:
    """The address of a published file: ``base`` is the app's address (scheme, host, port)."""
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.netloc}/app/static/{path}"
