"""SIGTERM and SIGINT, handled without deadlocking the process they stop.

Python runs a signal handler in the main thread, between two bytecodes, possibly while that
thread holds a lock: the one inside :meth:`threading.Event.wait` (serve's main loop waits on
its ``stop`` event), or a server's own. A handler that takes the same lock (``stop.set()``
does) then waits for itself forever, and the process never exits. So the handlers installed
here only start a thread, which does the work once the main thread has let go.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["STOP_SIGNALS", "on_stop_signal", "restore"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

Handlers = dict[signal.Signals, Any]


def on_stop_signal(act: Callable[[signal.Signals], None], name: str = "stop-signal") -> Handlers:
    """Run ``act(signal)`` in a thread of its own (named ``name``) on SIGTERM or SIGINT.

    :returns: the handlers this replaced (give them to :func:`restore`); none are installed,
        and ``{}`` is returned, outside the main thread, where Python allows no handler.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handle(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=act, args=(signal.Signals(signum),), name=name,
                         daemon=True).start()  # fmt: skip

    return {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}


def restore(previous: Handlers) -> None:
    """Put back the handlers :func:`on_stop_signal` replaced."""
    for sig, handler in previous.items():
        signal.signal(sig, handler)
