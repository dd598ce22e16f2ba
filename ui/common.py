"""Where data and runs live, wizard state kept across pages, and small shared widgets."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from tl_core.i18n import LANGUAGES, _, language, set_resolver
from tl_core import settings
from tl_core.config import TrainConfig
from tl_core.backbones import DEFAULT_BACKBONE, group_table
from tl_core.paths import run_path
from tl_core.recipe import Plan, plan_run, train_images
from tl_core.runs import RunDir
from tl_core.workspaces import Workspace, WorkspaceError, check_space as check_workspace_space, from_token, usage_bytes
from tl_core.workspaces import load_wizard, save_wizard as save_workspace_wizard, token_of

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DATA = ROOT / "sample_data" / "sign-language-digits"
MISTAKES_ANCHOR = "mistakes"  # the Evaluate page's "Mistakes" heading

DEFAULTS = {
    "size": "small", "similarity": "similar", "scenario": None, "data_dir": None, "backbone": DEFAULT_BACKBONE,
    "head_hidden": 64, "epochs": None, "head_lr": 1e-3, "augment": "auto",
    # The Model page's slider, in layer groups, with the scenario and backbone it was chosen for:
    # a new scenario or network makes it stale, and a stale override is ignored and cleared.
    "frozen_override": None,
}
SAVED_EXTRA = ("source", "data_ready")  # set by the Data page, restored with the rest


def workspace() -> Workspace | None:
    """Classroom mode: this visitor's workspace, from the session or from the secret in their link
    (``?ws=``, kept in the URL so a reload or a locked phone comes back to it). None in one-person
    mode, or before the visitor joined."""
    if not settings.classroom():
        return None
    token = st.session_state.get("ws_token") or st.query_params.get("ws")
    ws = from_token(token)
    if ws is not None:
        st.session_state["ws_token"] = token
        if st.query_params.get("ws") != token:
            st.query_params["ws"] = token
    return ws


def enter_workspace(ws: Workspace | None) -> None:
    """Make ``ws`` this session's workspace (None: leave it); the wizard is reloaded from its folder."""
    for key in ("ws_token", "wizard", "run_id", "lab_id"):
        st.session_state.pop(key, None)
    if ws is not None:
        st.session_state["ws_token"] = st.query_params["ws"] = token_of(ws)
    elif "ws" in st.query_params:
        del st.query_params["ws"]


def _own_workspace() -> Workspace | None:
    ws = workspace()
    if ws is None and settings.classroom():  # the app routes visitors to the join page first
        raise WorkspaceError(_("Join the class first (your name and the join code) to get your own workspace."))
    return ws


def data_root() -> Path:
    """The folder whose sub-folders users may pick as data sets: the visitor's workspace in classroom
    mode, else ``$TL_DATA_ROOT`` (default ./data)."""
    ws = _own_workspace()
    root = ws.data_root if ws else settings.data_root()
    root.mkdir(parents=True, exist_ok=True)
    return root


def runs_dir() -> Path:
    """Where this visitor's runs live: their workspace's in classroom mode (every page and every
    ``?run=``/``?lab=`` id is resolved in it, so no one reaches another's runs), else ``$TL_RUNS_DIR``."""
    ws = _own_workspace()
    return ws.runs_dir if ws else settings.runs_dir()


def check_space(incoming: int, used: int | None = None) -> None:
    """Classroom mode: refuse ``incoming`` bytes over the workspace's quota (a WorkspaceError)."""
    ws = workspace()
    if ws is not None:
        check_workspace_space(ws, incoming, used)


def space_used() -> int:
    """Bytes the visitor's workspace holds now (0 outside classroom mode)."""
    ws = workspace()
    return usage_bytes(ws) if ws is not None else 0


class _SavedAnswers(dict):
    """The wizard's answers in classroom mode: every change is written to the workspace at once, so a
    reload (a new session), a locked phone or a server restart comes back to them."""

    def __init__(self, answers: dict, ws: Workspace):
        super().__init__(answers)
        self.ws = ws

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self._save()

    def update(self, *args, **kwargs) -> None:
        super().update(*args, **kwargs)
        self._save()

    def _save(self) -> None:
        # Only the answers: the pages also keep working values here (the Model page's estimate).
        save_workspace_wizard(self.ws, {k: v for k, v in self.items() if k in DEFAULTS or k in SAVED_EXTRA})


def wizard() -> dict:
    """The user's choices so far; lives in the session and survives page switches (in classroom
    mode also in the workspace's folder)."""
    ws = workspace()
    answers = st.session_state.get("wizard")
    if answers is None or (ws is not None and getattr(answers, "ws", None) != ws):
        saved = load_wizard(ws) if ws else {}
        answers = {**DEFAULTS, **{k: v for k, v in saved.items() if k in DEFAULTS or k in SAVED_EXTRA}}
        st.session_state["wizard"] = answers = _SavedAnswers(answers, ws) if ws else answers
    return answers


def scenario() -> int:
    return scenario_of(wizard())


def scenario_of(w: dict) -> int:
    from tl_core.freezing import scenario_for

    return w["scenario"] or scenario_for(w["size"], w["similarity"]).number


def frozen_override(w: dict) -> int | None:
    """The user's own number of frozen groups, if it was chosen for the current scenario and network."""
    o = w.get("frozen_override")
    if o and (o["scenario"], o["backbone"]) == (scenario_of(w), w["backbone"]):
        return o["groups"]
    w["frozen_override"] = None
    return None


def config_from_wizard(w: dict) -> TrainConfig:
    """The training config the wizard's choices give (what Start training launches)."""
    return TrainConfig(data=w["data_dir"] or "", backbone=w["backbone"], scenario=scenario_of(w),
                       frozen_groups=frozen_override(w), epochs=w["epochs"], head_hidden=w["head_hidden"],
                       head_lr=w["head_lr"], augment=None if w["augment"] == "auto" else w["augment"])


def wizard_plan(w: dict, n_images: int = 0, planned: bool = False) -> Plan:
    """The plan the wizard's choices give on their backbone (``planned``: without the user's own
    freeze, i.e. what the scenario itself asks for)."""
    cfg = config_from_wizard(w)
    if planned:
        cfg = cfg.replace(frozen_groups=None)
    return plan_run(cfg, group_table(cfg.backbone)[1], train_images(n_images, cfg))


def current_run() -> RunDir | None:
    """The run named in the URL (``?run=ID``) or started in this session, so a reload or a new tab
    re-attaches to it. Never another session's run: on a shared server that would be someone else's."""
    path = run_path(runs_dir(), st.query_params.get("run") or st.session_state.get("run_id"))
    if path is not None and (path / "config.json").is_file():
        return RunDir(path)
    return None


def set_current_run(run_id: str | None) -> None:
    st.session_state["run_id"] = run_id
    if run_id:
        st.query_params["run"] = run_id
    elif "run" in st.query_params:
        del st.query_params["run"]


def _session_language() -> str | None:
    """The language of the browser session running this thread (None outside a page run)."""
    if get_script_run_ctx(suppress_warning=True) is None:
        return None
    if "language" not in st.session_state:  # first visit: ?lang=ko, else the browser's language
        asked = st.query_params.get("lang") or (st.context.locale or "en")[:2]
        st.session_state["language"] = asked if asked in LANGUAGES else "en"
    return st.session_state["language"]


set_resolver(_session_language)  # tl_core's sentences follow the session's language, fragments included


def language_switch() -> None:
    """The sidebar's English / 한국어 switch; the choice lives in the session and in the URL
    (``?lang=ko``), so a reload keeps it."""
    def switched() -> None:
        st.session_state["language"] = st.session_state["lang_switch"]

    lang = _session_language()
    st.sidebar.radio("Language / 언어", list(LANGUAGES), index=list(LANGUAGES).index(lang), horizontal=True,
                     format_func=LANGUAGES.get, key="lang_switch", on_change=switched)
    if st.query_params.get("lang", "en") != lang:
        st.query_params["lang"] = lang


def lkey(key: str) -> str:
    """Widget key for a choice whose option labels are translated: one widget per language, because
    Streamlit's front end shows no selection when a keyed widget's option labels change."""
    return key if language() == "en" else f"{key}.{language()}"


def next_step(label: str, page: str) -> None:
    st.divider()
    st.page_link(page, label=_("Next: {label} →", label=label), icon=":material/arrow_forward:")


GC_EVERY_SECONDS = 60.0
_last_gc = [time.monotonic()]


def collect_garbage() -> None:
    """A full garbage collection at most once a minute, on a full page run. Streamlit's own one
    after every run (``runner.postScriptGC``, off in .streamlit/config.toml) walked ~470k objects
    once torch was loaded: ~300 ms added to every click and every live-camera frame. A page run's
    namespace is a reference cycle (its functions point back at it), so this is what frees what a
    page held, uploaded photos included; between two collections Python's own collector runs too."""
    if time.monotonic() - _last_gc[0] >= GC_EVERY_SECONDS:
        gc.collect()
        _last_gc[0] = time.monotonic()


def server_threads() -> None:
    """Give the server's own predictions ``TL_SERVER_THREADS`` PyTorch threads (training runs in
    its own processes and keeps every core)."""
    import torch

    if torch.get_num_threads() != settings.server_threads():
        torch.set_num_threads(settings.server_threads())


@st.cache_resource(max_entries=4, show_spinner=False)
def _predictor(path: str, mtime: float):
    from tl_core.predict import Predictor

    server_threads()
    return Predictor.from_run(path)


def run_predictor(run: RunDir):
    """The run's best model, loaded once per server (reloaded when the checkpoint changes)."""
    with st.spinner(_("Loading the model…")):
        return _predictor(str(run.path), run.checkpoint("best").stat().st_mtime)


@st.cache_resource
def device_line(lang: str) -> str:
    """Where training and prediction run on this server (GPU when present, else CPU)."""
    from tl_core.distributed import describe_device

    return describe_device()


@st.cache_resource
def gpus() -> int:
    from tl_core.distributed import gpu_count

    return gpu_count()


def measured_scenario(data: str | None) -> int | None:
    """The scenario the Data page's measurement advised for ``data`` in this session, if any."""
    measured_for, m = st.session_state.get("measured", (None, None))
    if not (m and data and measured_for) or Path(measured_for).resolve() != Path(data).resolve():
        return None
    return m.get("scenario")


def _retrain(run: RunDir, step) -> None:
    """A step's button: train again like ``run`` with the one change the step names, and show it."""
    from tl_core.errors import TLError
    from tl_core.launcher import launch
    from tl_core.outcome import retrain_config

    cfg = retrain_config(TrainConfig.load(run.config_file), step)
    w = wizard()
    w.update(data_dir=cfg.data, scenario=cfg.scenario, epochs=cfg.epochs, augment=cfg.augment or "auto",
             frozen_override=None)
    try:
        set_current_run(launch(cfg, runs_dir()).id)
    except TLError as exc:
        st.session_state["train_error"] = str(exc)
    st.session_state["goto"] = "pages/train.py"


def show_outcome(run: RunDir, here: str):
    """Outcome first: the verdict with the test count, then its steps as buttons and links
    (``here``: "train" or "evaluate", where the mistakes are). Returns the outcome (None: no test score)."""
    from tl_core.outcome import outcome
    from tl_core.runs import read_json

    cfg = read_json(run.config_file, {}) or {}
    o = outcome((read_json(run.eval_file, {}) or {}).get("test"), run.metrics(), cfg,
                measured_scenario(cfg.get("data")))
    if o is None:
        return None
    {"good": st.success, "fair": st.warning, "poor": st.error}[o.level](o.sentence)
    for col, step in zip(st.columns(len(o.steps) or 1), o.steps):
        if step.retrains:
            col.button(step.label, key=f"o_{step.action}", on_click=_retrain, args=(run, step),
                       icon=":material/replay:")
        elif step.action == "predict":
            col.page_link("pages/predict.py", label=step.label, icon=":material/image_search:")
        elif here == "evaluate":
            col.markdown(f"[{step.label}](#{MISTAKES_ANCHOR})")
        else:
            col.page_link("pages/evaluate.py", label=step.label, icon=":material/fact_check:")
    return o


def follow_goto() -> None:
    """Go where a step's callback asked (``st.switch_page`` cannot run inside a callback)."""
    if target := st.session_state.pop("goto", None):
        st.switch_page(target, query_params=st.query_params.to_dict())  # keeps ?run= and ?lang=
