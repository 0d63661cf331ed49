"""Real `ocrmill serve` processes on free loopback ports, for API and browser tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")

ROOT = Path(__file__).resolve().parents[2]
FAKE = "tests.fault.engines:fake_engine"
REAL = "ocrmill.runtime.worker:build_engine"


class ServerProcess:
    """One ``python -m ocrmill serve --port 0`` subprocess; its log goes to a file."""

    def __init__(
        self,
        data_dir: Path,
        *args: str,
        engine: str = FAKE,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.args = args
        self.engine = engine
        self.env = {k: v for k, v in os.environ.items() if k != "OCRMILL_API_KEY"}
        self.env.update(env or {})
        self.log_path = log_path or data_dir.parent / f"{data_dir.name}-server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, *, ready: bool = True, timeout: float = 120) -> ServerProcess:
        cmd = [
            sys.executable,
            "-m",
            "ocrmill",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(self.data_dir),
            "--engine-factory",
            self.engine,
            *self.args,
        ]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"serving on (http://\S+)", self.log())
            if match:
                self.url = match.group(1)
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}):\n{self.log()}")
            time.sleep(0.05)
        else:
            raise RuntimeError(f"the server did not start:\n{self.log()}")
        if ready:
            self.wait_ready(deadline - time.monotonic())
        return self

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server never became ready:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> int | None:
        """SIGTERM (graceful), then SIGKILL if it lingers."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: no cleanup code runs in the server."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator:
    """``start_server(*args, engine=..., env=..., data_dir=...)`` -> a running server."""
    started: list[ServerProcess] = []

    def start(
        *args: str,
        engine: str = FAKE,
        env: dict[str, str] | None = None,
        data_dir: Path | None = None,
        ready: bool = True,
    ) -> ServerProcess:
        server = ServerProcess(
            data_dir or tmp_path / "data",
            *args,
            engine=engine,
            env=env,
            log_path=tmp_path / f"server-{len(started)}.log",
        )
        started.append(server)
        return server.start(ready=ready)

    yield start
    for server in started:
        server.stop()


def module_server(tmp_path_factory: pytest.TempPathFactory, *args: str, **kw: object) -> Iterator:
    root = tmp_path_factory.mktemp("server")
    server = ServerProcess(root / "data", *args, log_path=root / "server.log", **kw)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A fake-engine server with small limits: 2 workers, 1 MB uploads."""
    yield from module_server(
        tmp_path_factory, "--workers", "2", "--max-upload-mb", "1", "--max-queue", "16"
    )
