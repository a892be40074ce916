"""SIGTERM stops a process whose main thread holds its stop event's lock when the signal
lands (:mod:`connector.service.shutdown`). serve's main loop waits on that event, so it holds
the lock for a moment every 0.2 s; a handler that set the event itself then waited for itself
forever, and serve hung on SIGTERM (seen in CI)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import os, signal, threading, time
from connector.service.process import catch_signals
stop = threading.Event()
catch_signals(stop)
with stop._cond:  # where Event.wait is between taking its lock and sleeping
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.2)  # the handler runs in this thread, here
print("stopped" if stop.wait(10) else "not stopped", flush=True)
"""


def test_sigterm_stops_a_main_thread_that_holds_its_stop_events_lock():
    try:
        done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                              timeout=30)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise AssertionError("SIGTERM's handler deadlocked on the stop event's lock") from None
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped"
