"""Plotly figure builders: pure functions of plain data (no streamlit), used by the app."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go

from .i18n import _, ngettext
from .stats import wilson

FROZEN, TRAINABLE, HEAD = "#9aa5b1", "#2f6fde", "#e8833a"


def scenario_grid(selected: int | None) -> go.Figure:
    """The method's 2x2 grid (size x similarity) with the chosen scenario highlighted."""
    labels = {1: _("1 · freeze all,<br>train a new head"), 2: _("2 · freeze most,<br>fine-tune the top"),
              3: _("3 · freeze the early layers,<br>fine-tune the rest"),
              4: _("4 · fine-tune everything<br>from pretrained")}
    cells = [[1, 3], [2, 4]]  # rows: small, large; columns: similar, different
    z = [[1 if c == selected else 0 for c in row] for row in cells]
    text = [[labels[c] for c in row] for row in cells]
    fig = go.Figure(go.Heatmap(z=z, x=[_("similar to ImageNet"), _("different from ImageNet")],
                               y=[_("small data set"), _("large data set")], text=text, texttemplate="%{text}",
                               textfont={"size": 15}, colorscale=[[0, "#eef2f7"], [1, "#2f6fde"]], showscale=False,
                               hoverinfo="skip", xgap=4, ygap=4))
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=10, b=10))
    return fig


def training_curves(records: list[dict]) -> go.Figure:
    """Loss and accuracy per epoch (train and validation) plus the smoothed per-batch loss."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=(_("loss"), _("accuracy")))
    epochs = [r for r in records if r.get("kind") == "epoch"]
    batches = [r for r in records if r.get("kind") == "batch"]
    x_epoch = list(range(1, len(epochs) + 1))
    if batches:
        # Batch windows on the same axis as epochs: the fine-tune stage continues after the head epochs.
        offset = {"head": 0, "finetune": sum(1 for e in epochs if e["stage"] == "head")}
        xs = [offset.get(r["stage"], 0) + r["epoch"] - 1 + r["batch"] / max(r.get("batches") or r["batch"], 1)
              for r in batches]
        fig.add_scatter(x=xs, y=[r["loss"] for r in batches], name=_("train loss (batches)"), mode="lines",
                        line=dict(color="#b8c4d6", width=1), row=1, col=1)
    for key, name, color, col in (("train_loss", _("train loss",
                                                   ), "#2f6fde", 1), ("val_loss", _("val loss"), "#e8833a", 1),
                                  ("train_acc", _("train acc"), "#2f6fde", 2), ("val_acc", _("val acc"), "#e8833a", 2)):
        ys = [r.get(key) for r in epochs]
        fig.add_scatter(x=x_epoch, y=ys, name=name, mode="lines+markers", line=dict(color=color,
                        dash="solid" if key.startswith("train") else "dot"), row=1, col=col)
    fig.update_xaxes(title_text=_("epoch"))
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def layer_groups(names: list[str], counts: list[int], frozen: int, head_params: int) -> go.Figure:
    """One bar per layer group (parameters), grey when frozen, blue when trained; the head in orange."""
    colors = [FROZEN if i < frozen else TRAINABLE for i in range(len(names))] + [HEAD]
    fig = go.Figure(go.Bar(x=names + [_("new head")], y=counts + [head_params], marker_color=colors,
                           hovertemplate="%{x}: %{y:,} " + _("parameters") + "<extra></extra>"))
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=10, b=10), yaxis_title=_("parameters"))
    return fig


def confusion_matrix(cm: list[list[int]], classes: list[str]) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=cm, x=classes, y=classes, colorscale="Blues", texttemplate="%{z}",
                               hovertemplate=_("true {y}, predicted {x}: {z}", y="%{y}", x="%{x}", z="%{z}")
                               + "<extra></extra>"))
    fig.update_layout(height=max(300, 40 * len(classes) + 120), margin=dict(l=10, r=10, t=10, b=10),
                      xaxis_title=_("predicted"), yaxis_title=_("true"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    return fig


def class_counts(counts: dict[str, int]) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(counts), y=list(counts.values()), marker_color=TRAINABLE))
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=10, b=10), yaxis_title=_("images"))
    fig.update_xaxes(type="category")
    return fig


def top_k(top: list[dict]) -> go.Figure:
    fig = go.Figure(go.Bar(x=[t["prob"] for t in top][::-1], y=[t["label"] for t in top][::-1], orientation="h",
                           marker_color=TRAINABLE, texttemplate="%{x:.1%}"))
    fig.update_layout(height=60 + 32 * len(top), margin=dict(l=10, r=10, t=10, b=10), xaxis=dict(range=[0, 1]))
    fig.update_yaxes(type="category")
    return fig


def lab_chart(scenarios: list[dict], advised: int | None) -> go.Figure:
    """Test accuracy against trainable parameters (log scale); marker area grows with training time;
    the advisor's pick is a star."""
    fig = go.Figure()
    for s in scenarios:
        if s.get("test_accuracy") is None:
            continue
        picked = s["scenario"] == advised
        if s.get("test_images"):  # the 95% interval as an error bar: overlapping bars may be chance
            lo, hi = wilson(round(s["test_accuracy"] * s["test_images"]), s["test_images"])
            bar = dict(type="data", symmetric=False, array=[100 * (hi - s["test_accuracy"])],
                       arrayminus=[100 * (s["test_accuracy"] - lo)], color="#888", thickness=1.5)
        else:
            bar = None
        fig.add_trace(go.Scatter(
            x=[max(s["trainable_params"], 1)], y=[100 * s["test_accuracy"]], mode="markers+text", error_y=bar,
            name=_("scenario {n}", n=s["scenario"]) + (_(" (advised)") if picked else ""),
            text=[f"S{s['scenario']} · {s['seconds']:.0f} s" + (_(" · advised") if picked else "")],
            textposition="top center",
            marker=dict(size=14 + min(40, s["seconds"] ** 0.5 * 2), symbol="star" if picked else "circle",
                        color=HEAD if picked else TRAINABLE, line=dict(width=1, color="#333")),
            hovertemplate=_("scenario {n}<br>test accuracy {acc}%<br>{params} trainable parameters<br>{seconds:.0f} s",
                            n=s["scenario"], acc="%{y:.1f}", params="%{x:,}", seconds=s["seconds"])
            + "<extra></extra>"))
    fig.update_xaxes(type="log", title=_("trainable parameters (log scale)"))
    fig.update_yaxes(title=_("test accuracy (%)"))
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=30, b=10), showlegend=False)
    return fig


# One-line text summaries: every chart in the app has one, for people who cannot read plots.


def describe_grid(selected: int) -> str:
    where = {1: _("small and similar"), 2: _("large and similar"), 3: _("small and different"),
             4: _("large and different")}
    return _("Chart: the 2x2 grid of the method; highlighted is scenario {n}, for {where} data.", n=selected,
             where=where[selected])


def describe_counts(counts: dict[str, int]) -> str:
    if not counts:
        return _("Chart: no images counted.")
    most, least = max(counts, key=counts.get), min(counts, key=counts.get)
    if counts[most] == counts[least]:
        return _("Chart: images per class. {classes} classes, {n:,} images each; balanced.", classes=len(counts),
                 n=counts[most])
    ratio = counts[most] / max(counts[least], 1)
    return (_("Chart: images per class. {classes} classes, {images:,} images; most in '{most}' ({n_most:,}), fewest in "
              "'{least}' ({n_least:,})", classes=len(counts), images=sum(counts.values()), most=most,
              n_most=counts[most], least=least, n_least=counts[least])
            + (_("; balanced.",
                 ) if ratio < 1.5 else _("; the largest class has {ratio:.1f}x the smallest.", ratio=ratio)))


def describe_confusion(cm: list[list[int]], classes: list[str]) -> str:
    total = sum(map(sum, cm))
    right = sum(cm[i][i] for i in range(len(classes)))
    cells = [(cm[t][p], t, p) for t in range(len(classes)) for p in range(len(classes)) if t != p and cm[t][p]]
    text = _("Chart: confusion matrix. {right} of {total} test images are on the diagonal (right).", right=right,
             total=total)
    if cells:
        n, t, p = max(cells)
        text += ngettext(" Most frequent mistake: '{true}' taken for '{pred}' (once).",
                         " Most frequent mistake: '{true}' taken for '{pred}' ({n} times).", n, true=classes[t],
                         pred=classes[p])
    return text


def describe_top_k(top: list[dict]) -> str:
    rest = ", ".join(f"{t['label']} {t['prob']:.0%}" for t in top[1:])
    return (_("Chart: the model's top answers. {label} {p:.0%}", label=top[0]["label"], p=top[0]["prob"])
            + (_("; then {rest}.", rest=rest) if rest else "."))


def describe_curves(series: dict[str, list[float | None]]) -> str:
    """Validation accuracy curves of several runs: which run peaked highest, and when."""
    best = None
    for name, ys in series.items():
        for epoch, y in enumerate(ys, 1):
            if y is not None and (best is None or y > best[0]):
                best = (y, name, epoch)
    if best is None:
        return _("Chart: no validation accuracy recorded yet.")
    return _("Chart: validation accuracy per epoch of {n} run(s). Highest: {acc:.1%}, run {run} at epoch {epoch}.",
             n=len(series), acc=best[0], run=best[1], epoch=best[2])


def val_curves(records_by_run: dict[str, list[dict]]) -> dict[str, list[float | None]]:
    """Validation accuracy per epoch of each run, from its metrics records (both stages, in order)."""
    return {name: [r.get("val_acc") for r in records if r.get("kind") == "epoch"]
            for name, records in records_by_run.items()}


def compare_curves(series: dict[str, list[float | None]]) -> go.Figure:
    """Validation accuracy per epoch of several runs on one chart (the Runs page)."""
    fig = go.Figure()
    for name, ys in series.items():
        fig.add_scatter(x=list(range(1, len(ys) + 1)), y=ys, name=name, mode="lines+markers")
    fig.update_layout(height=320, xaxis_title=_("epoch"), yaxis_title=_("validation accuracy"),
                      margin=dict(l=10, r=10, t=10, b=10))
    return fig


def describe_lab(scenarios: list[dict], advised: int | None) -> str:
    done = [s for s in scenarios if s.get("test_accuracy") is not None]
    points = "; ".join(_("scenario {n}: {acc:.1%}, {params:,} trainable, {seconds:.0f} s", n=s["scenario"],
                         acc=s["test_accuracy"], params=s["trainable_params"], seconds=s["seconds"]) for s in done)
    return _("Chart: test accuracy against trainable parameters; the star is the advisor's pick ({advised}). {points}.",
             advised=advised, points=points)


def reliability_diagram(part: dict) -> go.Figure:
    """Accuracy against confidence per bin, before and after temperature scaling, with the
    diagonal of a perfectly honest model (``part``: one part of ``calibration.json``)."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=_("honest (confidence = accuracy)"),
                             line={"dash": "dash", "color": FROZEN}, hoverinfo="skip"))
    for key, name, colour in (("reliability_before", _("before: ECE {e:.3f}", e=part["ece_before"]), HEAD),
                              ("reliability_after", _("after: ECE {e:.3f}", e=part["ece_after"]), TRAINABLE)):
        rows = [r for r in part[key] if r["n"]]
        fig.add_trace(go.Scatter(x=[r["confidence"] for r in rows], y=[r["accuracy"] for r in rows],
                                 mode="lines+markers", name=name, line={"color": colour},
                                 marker={"size": [6 + 14 * (r["n"] / max(part["n"], 1)) ** 0.5 for r in rows]},
                                 customdata=[r["n"] for r in rows],
                                 hovertemplate=_("sure %{x:.0%}, right %{y:.0%} (%{customdata} images)")
                                 + "<extra></extra>"))
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=10, b=10), legend={"orientation": "h", "y": -0.2},
                      xaxis={"title": _("how sure the model says it is"), "range": [0, 1.02], "tickformat": ".0%"},
                      yaxis={"title": _("how often it is right"), "range": [0, 1.02], "tickformat": ".0%"})
    return fig


def embedding_scatter(m: dict) -> go.Figure:
    """The 2-D feature map of ``embedding.embedding_map``: one colour per class, the file on hover."""
    fig = go.Figure()
    names = [Path(p).name for p in m["paths"]]
    for c, cls in enumerate(m["classes"]):
        idx = [i for i, y in enumerate(m["labels"]) if y == c]
        fig.add_trace(go.Scatter(x=[m["x"][i] for i in idx], y=[m["y"][i] for i in idx], mode="markers", name=cls,
                                 marker={"size": 7, "opacity": 0.75}, customdata=[[names[i], i] for i in idx],
                                 hovertemplate=f"{cls}<br>%{{customdata[0]}}<extra></extra>"))
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=10, b=10), legend={"itemsizing": "constant"},
                      xaxis={"title": _("first direction of variation ({p:.0%})", p=m["variance"][0]),
                             "showticklabels": False},
                      yaxis={"title": _("second direction ({p:.0%})", p=m["variance"][1]), "showticklabels": False})
    return fig
