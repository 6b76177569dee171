"""Child processes that do not outlive their parent.

On Linux a process can ask the kernel for a signal when the thread that started it dies
(``prctl(PR_SET_PDEATHSIG)``). A backtest worker's pool processes ask for SIGKILL, so that a
worker killed with ``kill -9`` leaves no ~250 MB orphans behind; the dev stack's children ask
for SIGTERM, so that a killed supervisor leaves no services behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> None:
    """In a child: receive ``sig`` when the parent dies (Linux; elsewhere a no-op).

    If the parent is already gone by the time this runs, exit at once rather than live on.
    """
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig))
    if os.getppid() == 1:  # re-parented to init: the parent died before we asked
        os._exit(1)
