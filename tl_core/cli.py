"""``python -m tl_core``: the command line other tools rely on. Bad input exits non-zero with one
clear line on stderr; with ``--json`` the last stdout line is one JSON value."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback

from .i18n import _


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help=_("image folder: one sub-folder per class (or train/ + val/ inside)"))
    p.add_argument("--test-data", help=_("separate labelled folder used as the test split"))
    p.add_argument("--backbone", help=_("pretrained network (see list-backbones); default efficientnet_lite0"))
    g = p.add_mutually_exclusive_group()
    g.add_argument("--scenario", type=int, choices=[1, 2, 3, 4], help=_("1 small+similar ... 4 large+different"))
    g.add_argument("--freeze", type=float, metavar="FRACTION", help=_("share of backbone parameters to freeze (0-1)"))
    p.add_argument("--epochs", type=int, help=_("epochs of the main stage"))
    p.add_argument("--head-epochs", type=int, help=_("head-only epochs before fine-tuning"))
    p.add_argument("--head-hidden", type=int, default=64, help=_("hidden units of the new head (0 = linear)"))
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help=_("learning rate of the new head"))
    p.add_argument("--lr-ratio", type=float,
                   help=_("head lr / lr of the earliest trainable group (default 100 if similar, 10 if different)"))
    p.add_argument("--augment", choices=["none", "light", "strong"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--patience", type=int, default=5, help=_("early stopping patience (0 = off)"))
    p.add_argument("--weights", help=_("local pretrained weights file (for offline use)"))
    p.add_argument("--no-cache", action="store_true", help=_("do not use the feature cache"))
    p.add_argument("--cache-dir", help=_("feature cache folder (default ~/.cache/tl_core/features)"))
    p.add_argument("--bn-stats", choices=["frozen", "train"], default="frozen",
                   help=_("BatchNorm statistics while fine-tuning: keep ImageNet's (default) or re-estimate"))
    p.add_argument("--max-per-class", type=int, default=0, help=_("use at most this many images per class"))
    p.add_argument("--runs-dir", default="runs", help=_("where new run directories are created"))
    p.add_argument("--run-dir", help=_("train in this prepared run directory (holding config.json)"))
    p.add_argument("--resume", metavar="RUN_DIR", help=_("continue an interrupted run from its last checkpoint"))
    p.add_argument("--json", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m tl_core",
                                 description=_("Guided transfer learning for image classifiers."))
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("advise", help=_("scenario and freeze plan: from your answers, or measured with --data"))
    p.add_argument("--size", choices=["small", "large"])
    p.add_argument("--similarity", choices=["similar", "different"])
    p.add_argument("--data", help=_("measure size and similarity to ImageNet on this image folder"))
    p.add_argument("--backbone")
    p.add_argument("--json", action="store_true")
    _add_train_args(sub.add_parser("train", help=_("train a classifier (a new run directory)")))
    p = sub.add_parser("predict", help=_("top-k predictions for images"))
    p.add_argument("target", nargs="+",
                   help=_("RUN_DIR (or an exported BUNDLE folder) then IMAGE..., or just IMAGE... with --imagenet"))
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
    p = sub.add_parser("export", help=_("export a run as an ONNX or TorchScript bundle with a model card"))
    p.add_argument("run_dir")
    p.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
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
    p = sub.add_parser("status", help=_("state of a run directory"))
    p.add_argument("run_dir")
    p.add_argument("--json", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from . import commands
    from .errors import TLError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        result, text = getattr(commands, "cmd_" + args.command.replace("-", "_"))(args)
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
