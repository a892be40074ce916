"""Running the sandbox as a child process (``python -m connector.sandbox``), for benchmarks and
process tests: :class:`SandboxProcess` starts it and reads the banner it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import IO

__all__ = ["SandboxProcess"]


class SandboxProcess:
    """``python -m connector.sandbox`` as a child process, for benchmarks and process tests.

    ``base_url``, ``private_token`` and the other banner values are read from its output.

    :param args: extra command-line arguments (``--seed-contacts 10`` ...).
    """

    def __init__(self, *args: str) -> None:
        self._args = args
        self._process: subprocess.Popen[str] | None = None
        self.info: dict[str, str] = {}
        self.base_url = ""

    def __repr__(self) -> str:
        return f"SandboxProcess(base_url={self.base_url!r})"

    @property
    def private_token(self) -> str:
        """The private token the child printed."""
        return self.info["private_token"]

    def __enter__(self) -> SandboxProcess:
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        command = [sys.executable, "-m", "connector.sandbox", "--port", "0", *self._args]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        self._read_banner(self._process.stdout)
        return self

    def _read_banner(self, stream: IO[str] | None) -> None:
        assert stream is not None
        self.base_url = stream.readline().strip()
        if not self.base_url.startswith("http://"):
            self.__exit__(None, None, None)
            raise RuntimeError(f"SandboxProcess: no base URL in output {self.base_url!r}")
        for line in iter(stream.readline, ""):
            if not line.strip():
                break
            name, sep, value = line.partition(":")
            if sep and value.strip() and " " not in name:
                self.info[name] = value.strip()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
