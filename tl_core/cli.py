"""``python -m tl_core``: the command line other tools rely on. Bad input exits non-zero with one
clear line on stderr; with ``--json`` the last stdout line is one JSON value."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import traceback
from pathlib import Path

from .config import AUGMENT_PRESETS, TrainConfig
from .errors import ConfigError
from .i18n import N_, _


# TrainConfig fields whose flag is not simply --field-name, and the help of every flag. Defaults
# and types come from the dataclass itself, so the CLI cannot drift from it.
FLAG_NAMES = {"head_lr": "--lr", "frozen_fraction": "--freeze", "max_images_per_class": "--max-per-class"}
METAVARS = {"data": "DIR", "test_data": "DIR", "weights": "FILE", "cache_dir": "DIR", "frozen_fraction": "FRACTION",
            "max_images_per_class": "N", "frozen_groups": "N", "head_lr": "LR"}
CHOICES = {"scenario": [1, 2, 3, 4], "augment": list(AUGMENT_PRESETS), "bn_stats": ["frozen", "train"]}
HELP = {
    "data": N_("image folder: one sub-folder per class (or train/ + val/ inside)"),
    "test_data": N_("separate labelled folder used as the test split"),
    "backbone": N_("pretrained network (see list-backbones)"),
    "weights": N_("local pretrained weights file (for offline use)"),
    "scenario": N_("1 small+similar ... 4 large+different"),
    "frozen_fraction": N_("share of backbone parameters to freeze (0-1)"),
    "frozen_groups": N_("number of layer groups to freeze, from the input side"),
    "epochs": N_("epochs of the main stage"),
    "head_epochs": N_("head-only epochs before fine-tuning"),
    "head_hidden": N_("hidden units of the new head (0 = linear)"),
    "dropout": N_("dropout before the head's last layer"),
    "batch_size": N_("images per training step"),
    "head_lr": N_("learning rate of the new head"),
    "lr_ratio": N_("head lr / lr of the earliest trainable group (default 100 if similar, 10 if different)"),
    "weight_decay": N_("AdamW weight decay"),
    "augment": N_("random crops, flips and colour changes (default none: frozen work is cached)"),
    "val_fraction": N_("share of a single folder held out for validation"),
    "test_fraction": N_("share of a single folder held out for testing"),
    "seed": N_("seeds the split, the head and the batch order"),
    "patience": N_("early stopping patience (0 = off)"),
    "cache_dir": N_("feature cache folder (default ~/.cache/tl_core/features)"),
    "max_images_per_class": N_("use at most this many images per class (0 = all)"),
    "bn_stats": N_("BatchNorm statistics while fine-tuning: keep ImageNet's or re-estimate"),
    "label_smoothing": N_("target smoothing of the loss (0 = off)"),
}


def _add_train_args(p: argparse.ArgumentParser) -> None:
    exclusive = p.add_mutually_exclusive_group()
    for f in dataclasses.fields(TrainConfig):
        if f.name == "feature_cache":
            p.add_argument("--no-cache", action="store_true", help=_("do not use the feature cache"))
            continue
        kind = {"int": int, "float": float}.get(str(f.type).split(" ")[0], str)
        target = exclusive if f.name in ("scenario", "frozen_fraction", "frozen_groups") else p
        default = None if f.default is dataclasses.MISSING else f.default
        shown = default not in (None, "", 0) or f.name in ("seed",)
        text = _(HELP[f.name]) + (_(" (default {value})", value=default) if shown else "")
        target.add_argument(FLAG_NAMES.get(f.name, "--" + f.name.replace("_", "-")), dest=f.name, type=kind,
                            default=default, choices=CHOICES.get(f.name), metavar=METAVARS.get(f.name), help=text)
    p.add_argument("--runs-dir", default="runs", help=_("where new run directories are created"))
    p.add_argument("--run-dir", help=_("train in this prepared run directory (holding config.json)"))
    p.add_argument("--resume", metavar="RUN_DIR", help=_("continue an interrupted run from its last checkpoint"))
    p.add_argument("--json", action="store_true")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig a ``train`` command line asks for; paths made absolute so the saved config
    re-runs from any working directory."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if f.name != "feature_cache"}
    if not values["data"]:
        raise ConfigError(_("train needs --data DIR (a folder with one sub-folder of images per class)"))
    values["data"] = str(Path(values["data"]).resolve())
    if values["test_data"]:
        values["test_data"] = str(Path(values["test_data"]).resolve())
    return TrainConfig(**values, feature_cache=not args.no_cache)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m tl_core",
                                 description=_("Guided transfer learning for image classifiers."))
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("advise", help=_("scenario and freeze plan: from your answers, or measured with --data"))
    p.add_argument("--size", choices=["small", "large"])
    p.add_argument("--similarity", choices=["similar", "different"])
    p.add_argument("--data", help=_("measure size and similarity to ImageNet on this image folder"))
    p.add_argument("--backbone")
    p.add_argument("--no-race", action="store_true",
                   help=_("with --data: only measure size and similarity, skip the short race of the scenarios"))
    p.add_argument("--margin", type=float, default=1.0,
                   help=_("accuracy points a costlier scenario must win by to be worth its time (default 1)"))
    p.add_argument("--out", help=_("also write the JSON result to this file"))
    p.add_argument("--job-dir", help=argparse.SUPPRESS)  # the app's advice job: queued, stoppable, advice.json
    p.add_argument("--json", action="store_true")
    _add_train_args(sub.add_parser("train", help=_("train a classifier (a new run directory)")))
    p = sub.add_parser("predict", help=_("top-k predictions for images"))
    p.add_argument("target", nargs="+",
                   help=_("RUN_DIR (or an exported BUNDLE folder or .zip) then IMAGE..., or just IMAGE... with "
                          "--imagenet"))
    p.add_argument("--imagenet", action="store_true", help=_("use the pretrained network as-is (ImageNet labels)"))
    p.add_argument("--backbone")
    p.add_argument("--weights")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--trust", action="store_true",
                   help=_("open a TorchScript bundle (it runs its own code: only for bundles you made or trust)"))
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("lab", help=_("train all four scenarios with one short budget and compare them"))
    p.add_argument("--data", required=True, help=_("image folder: one sub-folder per class"))
    p.add_argument("--test-data", help=_("separate labelled folder used as the test split"))
    p.add_argument("--backbone")
    p.add_argument("--epochs", type=int, default=5, help=_("fine-tuning epochs of scenarios 2-4 (default 5)"))
    p.add_argument("--repeats", type=int, default=1,
                   help=_("train every scenario with this many seeds (each its own split) and report the spread"))
    p.add_argument("--runs-dir", default="runs", help=_("where the four runs (and the lab folder) are created"))
    p.add_argument("--lab-dir", help=_("lab folder to write lab.json into (default: a new one in --runs-dir)"))
    p.add_argument("--cache-dir", help=_("feature cache folder"))
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("import-dataset", help=_("fetch MNIST, Fashion-MNIST, CIFAR-10 or CIFAR-100 as an image folder"))
    p.add_argument("name", choices=["mnist", "fashion-mnist", "cifar10", "cifar100"])
    p.add_argument("--out", required=True, help=_("new folder to write train/ and test/ into"))
    p.add_argument("--root", help=_("download folder (default ~/.cache/tl_core/datasets)"))
    p.add_argument("--per-class", type=int, help=_("keep at most this many images per class and split"))
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("export", help=_("export a run as an ONNX, TorchScript or web page bundle with a model card"))
    p.add_argument("run_dir")
    p.add_argument("--format", choices=["onnx", "torchscript", "web"], default="onnx",
                   help=_("web: an index.html that classifies in any browser, offline (default onnx)"))
    p.add_argument("--quantize", choices=["int8"],
                   help=_("a smaller int8 model (onnx and web), measured against the full one first"))
    p.add_argument("--accept-loss", action="store_true",
                   help=_("write the int8 model even when it loses more than 1 point of test accuracy"))
    p.add_argument("--out", help=_("bundle folder to write (default RUN_DIR/export-FORMAT)"))
    p.add_argument("--which", choices=["best", "last"], default="best", help=_("which checkpoint to export"))
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("evaluate", help=_("evaluate a run on its test split or another folder"))
    p.add_argument("run_dir")
    p.add_argument("--data")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("list-backbones", help=_("registered pretrained networks"))
    p.add_argument("pattern", nargs="?", default="*")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("validate", help=_("check an image folder and list every problem"))
    p.add_argument("data")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("suspects", help=_("images whose label the rest of the data set disagrees with, worst first"))
    p.add_argument("--data", required=True, help=_("image folder: one sub-folder per class"))
    p.add_argument("--backbone")
    p.add_argument("--top", type=int, help=_("list the N least likely labels, suspect or not (default: the suspects)"))
    p.add_argument("--cache-dir", help=_("feature cache folder"))
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("duplicates", help=_("near-identical images by feature distance; kept on one side of every "
                                            "split from then on"))
    p.add_argument("--data", required=True, help=_("image folder: one sub-folder per class"))
    p.add_argument("--backbone")
    p.add_argument("--threshold", type=float, help=_("cosine similarity from which two images count as the same"))
    p.add_argument("--cache-dir", help=_("feature cache folder"))
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("worker", help=_("a warm training process: loads torch and the default backbone, then "
                                        "waits for one run (started by the app)"))
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("numerics", help=_("measure fp32 and bf16 here and show the precision new runs use"))
    p.add_argument("--backbone")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("status", help=_("state of a run directory"))
    p.add_argument("run_dir")
    p.add_argument("--json", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from . import commands, data_commands
    from .errors import TLError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        name = "cmd_" + args.command.replace("-", "_")
        command = getattr(commands, name, None) or getattr(data_commands, name)
        result, text = command(args)
    except TLError as exc:
        print(_("error: {exc}", exc=exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(_("error: interrupted"), file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns a bug into a clear line
        logging.getLogger("tl_core").error("unexpected error:\n%s", traceback.format_exc())
        print(_("error: unexpected {kind}: {exc} (please report this)", kind=type(exc).__name__, exc=exc),
              file=sys.stderr)
        return 1
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun only rank 0 reports
    if getattr(args, "json", False):
        print(json.dumps(result))
    elif text:
        print(text)
    return 0
