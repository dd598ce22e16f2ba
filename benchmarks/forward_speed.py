"""Forward speed of backbones here, with and without the settings tl_core applies.

Each setting runs in a fresh process (the allocator setting must be set before Python starts).
Usage: .venv/bin/python benchmarks/forward_speed.py [BACKBONE ...]
Prints images/s per backbone for: default, channels_last, allocator, channels_last + allocator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAST_MALLOC = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"

CHILD = """
import json, sys, time, torch
from tl_core.backbones import get_backbone
spec = get_backbone(sys.argv[1]); cl = sys.argv[2] == "1"
net = spec.build().eval()
x = torch.randn(16, 3, spec.input_size, spec.input_size)
if cl:
    net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
with torch.inference_mode():
    net(x)
    t = time.perf_counter(); n = 0
    while time.perf_counter() - t < 6:
        net(x); n += len(x)
print(json.dumps(n / (time.perf_counter() - t)))
"""


def measure(name: str, channels_last: bool, allocator: bool) -> float:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env["PYTHONPATH"] = str(ROOT)
    if allocator:
        env["GLIBC_TUNABLES"] = FAST_MALLOC
    out = subprocess.run([sys.executable, "-c", CHILD, name, "1" if channels_last else "0"], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(names: list[str]) -> None:
    print(f"{'backbone':<20} {'default':>9} {'ch_last':>9} {'alloc':>9} {'both':>9}  (images/s, batch 16)")
    for name in names:
        row = [measure(name, cl, al) for cl, al in ((False, False), (True, False), (False, True), (True, True))]
        print(f"{name:<20} " + " ".join(f"{v:9.1f}" for v in row))


if __name__ == "__main__":
    main(sys.argv[1:] or ["efficientnet_lite0"])
