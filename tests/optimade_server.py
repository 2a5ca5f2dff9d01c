"""The real OPTIMADE reference server (PyPI `optimade[server]` 1.5.0) on 127.0.0.1, started for tests.

It runs in its own virtualenv (it pins pydantic, fastapi and more), named by MATREG_OPTIMADE_SERVER_PYTHON:
    python3 -m venv /work/optimade-venv && /work/optimade-venv/bin/pip install 'optimade[server]==1.5.0'
    export MATREG_OPTIMADE_SERVER_PYTHON=/work/optimade-venv/bin/python
It serves its bundled test structures (mongomock) with tests/fixtures/optimade/reference_server_config.json.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import requests

SERVER_PYTHON_ENV = "MATREG_OPTIMADE_SERVER_PYTHON"
CONFIG = Path(__file__).resolve().parent / "fixtures" / "optimade" / "reference_server_config.json"


def server_python() -> str | None:
    """The interpreter of the reference server's virtualenv, if the environment names one."""
    return os.environ.get(SERVER_PYTHON_ENV) or None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ReferenceServer:
    """`uvicorn optimade.server.main:app` on a free port; `root` is its base URL once /v1/info answers."""

    def __init__(self, python: str, workdir: Path, startup_s: float = 60.0) -> None:
        self.python = python
        self.workdir = workdir
        self.startup_s = startup_s
        self.root = f"http://127.0.0.1:{free_port()}"
        self.log = workdir / "optimade-server.log"
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> ReferenceServer:
        env = os.environ | {
            "OPTIMADE_CONFIG_FILE": str(CONFIG),
            "OPTIMADE_BASE_URL": self.root,  # links.next must name this port, not the config's
            "OPTIMADE_LOG_DIR": str(self.workdir),  # its default, /var/log/optimade, needs root
        }
        port = self.root.rsplit(":", 1)[1]
        command = [self.python, "-m", "uvicorn", "optimade.server.main:app", "--host", "127.0.0.1", "--port", port]
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_until_up()
        except Exception:
            self.__exit__()
            raise
        return self

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the OPTIMADE reference server exited: {self.log.read_text()[-2000:]}")
            try:
                if requests.get(f"{self.root}/v1/info", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the OPTIMADE reference server did not answer in {self.startup_s:g} s")

    def __exit__(self, *exc) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
