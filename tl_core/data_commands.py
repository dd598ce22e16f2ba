"""The CLI's commands about data sets (import, check, suspect labels, near duplicates). Each returns
``(json_result, human_text)``; errors are raised as ``TLError``."""

from __future__ import annotations

import time

from .errors import ConfigError
from .i18n import _


def cmd_import_dataset(args):
    import sys

    from .opendata import import_dataset

    last = {"what": None, "t": 0.0}

    def progress(what: str, done: int, total: int) -> None:
        if what != last["what"] or time.time() - last["t"] > 1 or done == total:
            last.update(what=what, t=time.time())
            print(f"{what}: {done:,}/{total:,}" if total else f"{what}: {done:,}", file=sys.stderr, flush=True)

    result = import_dataset(args.name, args.out, args.root, args.per_class, progress)
    return result, _("{name}: {train:,} training and {test:,} test images in {classes} classes written to {out}",
                     name=args.name, train=result["counts"]["train"], test=result["counts"]["test"],
                     classes=len(result["classes"]), out=result["out"])


def cmd_validate(args):
    from .data import scan_folder, validate

    report = validate(scan_folder(args.data))[0]
    d = report.to_dict()
    lines = [_("{classes} classes, {images} usable images: {counts}", classes=len(d["classes"]),
               images=sum(d["counts"].values()), counts=d["counts"])]
    lines += [f"{_(i['level']).upper()}: {i['message']}" for i in d["issues"]]
    lines.append(_("OK: ready to train") if d["ok"] else _("NOT READY: fix the errors above"))
    return d, "\n".join(lines)


def cmd_suspects(args):
    from .suspects import find_suspects

    if args.top is not None and args.top < 1:
        raise ConfigError(_("--top must be at least 1, got {n}", n=args.top))
    result = find_suspects(args.data, args.backbone, args.cache_dir, args.top)
    lines = [_("{n} of {images} images look mislabelled ({seconds:.1f} s, {backbone}):", n=result["flagged"],
               images=result["images"], seconds=result["seconds"], backbone=result["backbone"])]
    lines += [_("  {path}: labelled {given} ({p_given:.0%}), looks like {likely} ({p_likely:.0%})", **row)
              for row in result["suspects"]]
    return result, "\n".join(lines)


def cmd_duplicates(args):
    from .neardup import THRESHOLD, find_near_duplicates

    threshold = THRESHOLD if args.threshold is None else args.threshold
    if not 0 < threshold <= 1:
        raise ConfigError(_("--threshold must be in (0, 1], got {t}", t=threshold))
    result = find_near_duplicates(args.data, args.backbone, args.cache_dir, threshold)
    lines = [_("{n} group(s) of near-identical images among {images} ({seconds:.1f} s); each is kept on one side "
               "of every split from now on", n=len(result["groups"]), images=result["images"],
               seconds=result["seconds"])]
    lines += [f"  {g['similarity']:.3f}: " + ", ".join(f"{p} ({part})" for p, part in zip(g["paths"], g["parts"]))
              for g in result["groups"]]
    return result, "\n".join(lines)
