import os
import sys

from .launcher import FAST_MALLOC

# glibc's allocator must be tuned before the process starts (it made CPU forward passes 1.4-2.5x
# faster here): re-run this same command once with the setting, unless the caller chose one.
if sys.platform.startswith("linux") and "GLIBC_TUNABLES" not in os.environ:
    os.environ["GLIBC_TUNABLES"] = FAST_MALLOC
    os.execv(sys.executable, [sys.executable, "-m", "tl_core", *sys.argv[1:]])

from .cli import main  # noqa: E402

sys.exit(main())
