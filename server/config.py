"""Settings from flags and environment, validated at start-up. One table, one place.

A bad value raises ConfigError naming the setting and what it takes.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs


class ConfigError(Exception):
    pass


def _pos_int(v: str) -> int:
    n = int(v)
    if n <= 0:
        raise ValueError("must be a positive integer")
    return n


def _pos_float(v: str) -> float:
    x = float(v)
    if not x > 0:
        raise ValueError("must be a positive number")
    return x


def _log_format(v: str) -> str:
    if v not in ("json", "console"):
        raise ValueError("must be json or console")
    return v


def _port(v: str) -> int:
    n = int(v)
    if not 0 <= n <= 65535:
        raise ValueError("must be a port number 0-65535")
    return n


@dataclass(frozen=True)
class Settings:
    """Every knob of a hub node. `env` names the environment variable of each."""

    host: str = field(default="127.0.0.1", metadata={"env": "OS1_HOST", "parse": str})
    port: int = field(default=8080, metadata={"env": "OS1_PORT", "parse": _port})
    secret: str = field(default="", metadata={"env": "OS1_SECRET", "parse": str})
    data_dir: str = field(default="", metadata={"env": "OS1_DATA_DIR", "parse": str})
    redis_url: str = field(default="", metadata={"env": "OS1_REDIS_URL", "parse": str})
    log_format: str = field(default="console", metadata={"env": "OS1_LOG_FORMAT", "parse": _log_format})
    node: str = field(default="", metadata={"env": "OS1_NODE", "parse": str})
    max_frame: int = field(default=65536, metadata={"env": "OS1_MAX_FRAME", "parse": _pos_int})
    max_text: int = field(default=16384, metadata={"env": "OS1_MAX_TEXT", "parse": _pos_int})
    rate_limit: float = field(default=50.0, metadata={"env": "OS1_RATE_LIMIT", "parse": _pos_float})
    rate_burst: int = field(default=100, metadata={"env": "OS1_RATE_BURST", "parse": _pos_int})
    rate_strikes: int = field(default=20, metadata={"env": "OS1_RATE_STRIKES", "parse": _pos_int})
    rate_window: float = field(default=10.0, metadata={"env": "OS1_RATE_WINDOW", "parse": _pos_float})
    send_queue: int = field(default=4096, metadata={"env": "OS1_SEND_QUEUE", "parse": _pos_int})
    history: int = field(default=1000, metadata={"env": "OS1_HISTORY", "parse": _pos_int})
    hello_timeout: float = field(default=10.0, metadata={"env": "OS1_HELLO_TIMEOUT", "parse": _pos_float})
    cid_ttl: float = field(default=600.0, metadata={"env": "OS1_CID_TTL", "parse": _pos_float})
    drain_timeout: float = field(default=5.0, metadata={"env": "OS1_DRAIN_TIMEOUT", "parse": _pos_float})

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Environment first, then explicit overrides (flags); None overrides are ignored."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            parse: Callable[[str], Any] = f.metadata["parse"]
            raw = overrides.get(f.name)
            if raw is None and name in env:
                raw = env[name]
            if raw is None:
                continue
            try:
                values[f.name] = parse(str(raw))
            except ValueError as e:
                raise ConfigError(f"{name} (--{f.name.replace('_', '-')}) = {raw!r}: {e}") from None
        return cls(**values)

    def with_defaults_filled(self) -> Settings:
        """Resolve data dir, node name and the signing secret (created once, kept on disk)."""
        data_dir = self.data_dir or platformdirs.user_data_dir("os1")
        node = self.node or f"{socket.gethostname()}-{os.getpid()}"
        secret = self.secret or load_or_create_secret(Path(data_dir))
        return replace(self, data_dir=data_dir, node=node, secret=secret)


def load_or_create_secret(data_dir: Path) -> str:
    path = data_dir / "secret"
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # Created 0600 so only this user can mint tokens with it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret


def settings_table() -> list[tuple[str, str, str]]:
    """(env var, flag, default) of every setting — the README table is checked against this."""
    return [
        (f.metadata["env"], "--" + f.name.replace("_", "-"), repr(f.default))
        for f in fields(Settings)
    ]
