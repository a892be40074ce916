"""``ghl-connector serve`` as a real child process, pointed at a sandbox (service tests, bench)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


class ServeProcess:
    """``python -m connector serve`` with the sandbox's URL, token and keys.

    :param recipes: the recipe folder.
    :param home: ``$CONNECTOR_HOME`` (the state file is ``home/state.db``).
    :param base_url: the sandbox's base URL.
    :param token: the sandbox's private token (sent as ``$CONNECTOR_TOKEN``).
    :param location_id: the token's location.
    :param public_keys: the sandbox's webhook public keys (PEM by kind).
    :param extra: more ``serve`` arguments.
    """

    def __init__(self, recipes: Path, home: Path, *, base_url: str, token: str,
                 location_id: str, public_keys: dict[str, str], extra: tuple[str, ...] = ()):
        self.recipes = recipes
        self.home = home
        self.db = home / "state.db"
        self.base_url = base_url
        self.env = dict(os.environ)
        self.env.update({
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), self.env.get("PYTHONPATH")) if p),
            "CONNECTOR_HOME": str(home), "CONNECTOR_TOKEN": token,
            "CONNECTOR_LOCATION_ID": location_id, "CONNECTOR_LOG_LEVEL": "INFO",
        })
        home.mkdir(parents=True, exist_ok=True)
        self.key_files = []
        for kind, pem in public_keys.items():
            path = home / f"sandbox-{kind}.pem"
            path.write_text(pem)
            self.key_files.append(str(path))
        self.extra = extra
        self.process: subprocess.Popen[str] | None = None
        self.summary: list[str] = []
        self.url = ""
        self.health_url = ""
        self.logs: list[str] = []
        self._reader: threading.Thread | None = None
        self.port = 0

    def command(self) -> list[str]:
        """The serve command line."""
        keys = [arg for path in self.key_files for arg in ("--public-key", path)]
        return [sys.executable, "-m", "connector", "serve", "--recipes", str(self.recipes),
                "--port", str(self.port), "--base-url", self.base_url, "--workers", "4",
                *keys, *self.extra]

    def start(self) -> ServeProcess:
        """Start serve and wait for its ``ready`` line (raises with its output otherwise)."""
        fields = self.launch("serve")
        self.url, self.health_url = fields["webhook URL"], fields["health"]
        self.port = int(self.url.split(":")[2].split("/")[0])
        return self

    def launch(self, name: str) -> dict[str, str]:
        """Start the command and wait for its ``ready`` line; its ``name: value`` lines."""
        self.process = subprocess.Popen(self.command(), stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=self.env)
        assert self.process.stdout is not None and self.process.stderr is not None
        self._reader = threading.Thread(target=self._read_logs, args=(self.process.stderr,),
                                        daemon=True)
        self._reader.start()
        self.summary = []
        for line in iter(self.process.stdout.readline, ""):
            self.summary.append(line.rstrip("\n"))
            if line.strip() == "ready":
                break
        else:
            self.process.wait(10)
            raise RuntimeError(f"{name} did not start: {self.summary} {self.logs[-20:]}")
        return dict(line.split(": ", 1) for line in self.summary if ": " in line)

    def _read_logs(self, stream: IO[str]) -> None:
        for line in iter(stream.readline, ""):
            self.logs.append(line.rstrip("\n"))

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines so far, parsed."""
        return [json.loads(line) for line in self.logs if line.startswith("{")]

    def health(self) -> httpx.Response:
        """GET /healthz."""
        return httpx.get(self.health_url, timeout=5)

    def kill9(self) -> None:
        """kill -9, and wait for the process to be gone."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        if self._reader is not None:
            self._reader.join(5)
        self._close_pipes()

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait; returns the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        if self._reader is not None:
            self._reader.join(5)
        self._close_pipes()
        return code

    def _close_pipes(self) -> None:
        assert self.process is not None
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()


def wait_for(condition: Any, timeout: float = 20.0, step: float = 0.05) -> bool:  # noqa: ANN401
    """Poll ``condition()`` until it is true or ``timeout`` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = bool(condition())
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)
