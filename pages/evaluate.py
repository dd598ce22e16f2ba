"""Step 5: how good is the model on images it never saw? Per class, confusion matrix, mistakes."""

from pathlib import Path

import streamlit as st

from tl_core.errors import TLError
from tl_core.figures import confusion_matrix, describe_confusion
from tl_core.diagnose import epochs_total, overall_epoch
from tl_core.glossary import explain, glossary_markdown
from tl_core.i18n import _
from tl_core.runs import read_json, run_state, stage_label
from tl_core.stats import interval_text
from ui.run_tools import calibration_section, feature_maps_section
from ui.share import share_section
from ui.common import MISTAKES_ANCHOR, current_run, follow_goto, lkey, next_step, run_predictor, show_outcome

follow_goto()

st.title(_("5 · Evaluate"))


run = current_run()  # this session's run (or the one in the link), never someone else's newest
if run is None:
    st.info(_("Train a model first (or pick one on the Runs page)."))
    st.stop()
cfg = read_json(run.config_file, {})
st.caption(_("Run `{id}` · {backbone} · data `{data}`", id=run.id, backbone=cfg.get("backbone"),
             data=Path(cfg.get("data") or "").name))
ev = read_json(run.eval_file)
if not ev or "test" not in ev:
    state = run_state(run)
    if state == "failed":
        st.error(_("Run `{id}` failed, so there is nothing to evaluate: {error}", id=run.id,
                   error=run.status().get("error") or _("unknown reason")))
    elif state in ("queued", "running"):
        st.info(_("Run `{id}` is {state}: its evaluation appears here when training ends.", id=run.id,
                  state=_(state)))
    else:
        st.info(_("Run `{id}` is {state} and has no test results (no test images, or it ended before its first "
                  "epoch).", id=run.id, state=_(state)))
    st.page_link("pages/train.py", label=_("Go to Train"), icon=":material/model_training:")
    st.stop()

test = ev["test"]
show_outcome(run, "evaluate")
records = run.metrics()
c1, c2, c3 = st.columns(3)
c1.metric(_("Test accuracy"), f"{test['accuracy']:.1%}", help=explain("test"))
if "val" in ev:
    c2.metric(_("Validation accuracy"), f"{ev['val']['accuracy']:.1%}", help=explain("validation"))
c3.metric(_("Test images"), test["n"], help=_("Photos set aside before training and never shown to the model."))
st.caption(_("95% interval of the test accuracy: {interval}. On {n} test photos one photo is {point:.1f} points; "
             "more test photos give a tighter interval.", interval=interval_text(test["accuracy"], test["n"]),
             n=test["n"], point=100 / max(test["n"], 1)))
worst = min(test["per_class"], key=lambda c: c["f1"])
st.caption(_("Best model: epoch {epoch} of {epochs} ({stage}). Weakest class: '{cls}' ({recall:.0%} of its test "
             "photos found).", epoch=overall_epoch(records, ev["best_stage"], ev["best_epoch"]),
             epochs=epochs_total(records), stage=stage_label(ev["best_stage"]), cls=worst["class"], recall=worst["recall"]))
with st.expander(_("Expert details: precision, recall and F1 per class")):
    st.markdown(glossary_markdown(["precision", "recall", "f1", "support"]))
    columns = {"class": _("class"), "precision": _("precision"), "recall": _("recall"), "f1": "F1",
               "support": _("test photos")}
    st.dataframe([{columns.get(k, k): (f"{v:.0%}" if isinstance(v, float) else v) for k, v in c.items()}
                  for c in test["per_class"]], width="stretch", hide_index=True)

st.subheader(_("Confusion matrix"))
st.caption(_("Rows: the true class. Columns: what the model said. Off the diagonal are the mistakes."))
classes, cm = test["classes"], test["confusion"]
st.plotly_chart(confusion_matrix(cm, classes), width="stretch", config={"displayModeBar": False})
st.caption(describe_confusion(cm, classes))
cells = sorted(((cm[t][p], t, p) for t in range(len(classes)) for p in range(len(classes)) if t != p and cm[t][p]),
               reverse=True)
if cells:
    n, t, p = st.selectbox(_("Show the images of a cell"), cells, key=lkey("e_cell"),
                           format_func=lambda c: _("true '{true}' → predicted '{pred}' ({n})", true=classes[c[1]],
                                                   pred=classes[c[2]], n=c[0]))
    hits = [m for m in test["misclassified"] if m["true"] == classes[t] and m["pred"] == classes[p]]
    st.image([m["path"] for m in hits[:24]], width=120,
             caption=[_("{p:.0%} sure", p=m["confidence"]) for m in hits[:24]])

st.subheader(_("Mistakes"), anchor=MISTAKES_ANCHOR)
mistakes = test["misclassified"][:30]
if not mistakes:
    st.success(_("No test image was misclassified."))
else:
    cam = st.toggle(_("Show where the model looked (Grad-CAM: red = what made it say the wrong class)"),
                    key="e_cam", help=explain("grad_cam"))
    predictor = run_predictor(run) if cam else None
    cols = st.columns(6)
    for i, m in enumerate(mistakes):
        with cols[i % 6]:
            try:
                st.image(predictor.explain(m["path"])[0] if predictor else m["path"], width="stretch")
            except TLError as exc:  # the file was moved or deleted since the evaluation
                st.warning(f"{Path(m['path']).name}: {exc}")
            st.caption(_("true **{true}** · said **{pred}** ({p:.0%})", true=m["true"], pred=m["pred"],
                         p=m["confidence"]))

calibration_section(run)
feature_maps_section(run)

share_section(run)
next_step(_("try it on new photos"), "pages/predict.py")
