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


MINDS = ("card", "reflex", "openai", "local")


def _mind(v: str) -> str:
    if v not in MINDS:
        raise ValueError("must be one of " + ", ".join(MINDS))
    return v


def _on_off(v: str) -> str:
    if v not in ("on", "off"):
        raise ValueError("must be on or off")
    return v


def _port(v: str) -> int:
    n = int(v)
    if not 0 <= n <= 65535:
        raise ValueError("must be a port number 0-65535")
    return n


def setting(default: Any, env: str, parse: Callable[[str], Any], help: str) -> Any:
    return field(default=default, metadata={"env": env, "parse": parse, "help": help})


@dataclass(frozen=True)
class Settings:
    """Every knob of a hub node. `env` names the environment variable of each."""

    host: str = setting("127.0.0.1", "OS1_HOST", str, "address to bind")
    port: int = setting(8080, "OS1_PORT", _port, "port to listen on; 0 picks a free one")
    secret: str = setting(
        "", "OS1_SECRET", str, "JWT signing secret; created and kept in the data dir when unset"
    )
    data_dir: str = setting(
        "", "OS1_DATA_DIR", str, "where the generated secret is kept (default: the per-user data dir)"
    )
    redis_url: str = setting(
        "",
        "OS1_REDIS_URL",
        str,
        "redis://… to share state between hub nodes (default: embedded memory engine)",
    )
    log_format: str = setting("console", "OS1_LOG_FORMAT", _log_format, "json or console")
    node: str = setting("", "OS1_NODE", str, "this node's name in welcome frames and logs (default host-pid)")
    max_frame: int = setting(
        65536, "OS1_MAX_FRAME", _pos_int, "largest frame accepted, bytes (above: close 1009)"
    )
    max_text: int = setting(
        16384, "OS1_MAX_TEXT", _pos_int, "longest message text, characters (above: error too_large)"
    )
    rate_limit: float = setting(
        50.0, "OS1_RATE_LIMIT", _pos_float, "frames per second per connection (token bucket rate)"
    )
    rate_burst: int = setting(100, "OS1_RATE_BURST", _pos_int, "token bucket size per connection")
    rate_strikes: int = setting(
        20, "OS1_RATE_STRIKES", _pos_int, "rate_limited errors within the window before close 4029"
    )
    rate_window: float = setting(10.0, "OS1_RATE_WINDOW", _pos_float, "seconds of the strike window")
    persona_rate_limit: float = setting(
        10_000.0,
        "OS1_PERSONA_RATE_LIMIT",
        _pos_float,
        "frames per second per persona connection (one carries thousands of conversations)",
    )
    persona_rate_burst: int = setting(
        20_000, "OS1_PERSONA_RATE_BURST", _pos_int, "token bucket size per persona connection"
    )
    persona_lease: float = setting(
        5.0,
        "OS1_PERSONA_LEASE",
        _pos_float,
        "seconds a persona worker keeps its conversations without a heartbeat (renewed every "
        "fifth of it); then the persona's other workers take them over",
    )
    personas: str = setting(
        "builtin",
        "OS1_PERSONAS",
        str,
        "personas os1 serve runs itself: builtin, none, or a folder of card .toml files",
    )
    mind: str = setting(
        "card",
        "OS1_MIND",
        _mind,
        "the mind of every persona os1 serve runs: card (each card's own), reflex, openai or local",
    )
    collective: str = setting(
        "on",
        "OS1_COLLECTIVE",
        _on_off,
        "whether the personas os1 serve runs talk among themselves (conservative budgets): on or off",
    )
    send_queue: int = setting(
        4096, "OS1_SEND_QUEUE", _pos_int, "frames queued to one slow reader before close 4008"
    )
    history: int = setting(1000, "OS1_HISTORY", _pos_int, "messages retained per room")
    hello_timeout: float = setting(
        10.0, "OS1_HELLO_TIMEOUT", _pos_float, "seconds to send hello after the upgrade (then close 4001)"
    )
    cid_ttl: float = setting(
        600.0, "OS1_CID_TTL", _pos_float, "seconds a cid is remembered for idempotent retries"
    )
    drain_timeout: float = setting(
        5.0,
        "OS1_DRAIN_TIMEOUT",
        _pos_float,
        "seconds to drain on SIGTERM before remaining sockets are dropped",
    )

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
    """The secret kept in `data_dir`, created on first use (an empty file counts as none)."""
    path = data_dir / "secret"
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # Written 0600 to a temp file, then renamed: a crash never leaves a half-written secret.
    tmp = path.with_name(f".secret.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.replace(tmp, path)
    return secret


def settings_markdown() -> str:
    """The README's configuration table (`python -m server.config` prints it)."""
    rows = ["| Environment | Flag | Default | What it sets |", "|---|---|---|---|"]
    for f in fields(Settings):
        flag = "—" if f.name == "secret" else f"`--{f.name.replace('_', '-')}`"
        default = f"`{f.default}`" if f.default != "" else "—"
        rows.append(f"| `{f.metadata['env']}` | {flag} | {default} | {f.metadata['help']} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_markdown())
