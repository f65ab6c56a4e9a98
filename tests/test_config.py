"""server.config: settings from environment and flags, and the on-disk signing secret."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from server.config import ConfigError, Settings, load_or_create_secret, settings_markdown


def test_defaults_with_empty_env() -> None:
    s = Settings.load({})
    assert s == Settings()
    assert (s.port, s.max_frame, s.max_text, s.history) == (8080, 65536, 16384, 1000)
    assert (s.rate_strikes, s.rate_window, s.cid_ttl, s.hello_timeout) == (20, 10.0, 600.0, 10.0)
    assert s.log_format == "console"


def test_env_values_are_parsed() -> None:
    env = {
        "OS1_HOST": "0.0.0.0", "OS1_PORT": "9000", "OS1_SECRET": "k", "OS1_DATA_DIR": "/tmp/x",
        "OS1_REDIS_URL": "redis://r:6379/0", "OS1_LOG_FORMAT": "json", "OS1_NODE": "n1",
        "OS1_MAX_FRAME": "1024", "OS1_MAX_TEXT": "100", "OS1_RATE_LIMIT": "2.5",
        "OS1_RATE_BURST": "7", "OS1_RATE_STRIKES": "3", "OS1_RATE_WINDOW": "0.5",
        "OS1_SEND_QUEUE": "64", "OS1_HISTORY": "10", "OS1_HELLO_TIMEOUT": "1.5",
        "OS1_CID_TTL": "30", "OS1_DRAIN_TIMEOUT": "2",
    }
    s = Settings.load(env)
    assert s == Settings(
        host="0.0.0.0", port=9000, secret="k", data_dir="/tmp/x", redis_url="redis://r:6379/0",
        log_format="json", node="n1", max_frame=1024, max_text=100, rate_limit=2.5, rate_burst=7,
        rate_strikes=3, rate_window=0.5, send_queue=64, history=10, hello_timeout=1.5,
        cid_ttl=30.0, drain_timeout=2.0,
    )
    assert isinstance(s.port, int) and isinstance(s.rate_limit, float)


def test_every_setting_has_a_distinct_env_var() -> None:
    names = [f.metadata["env"] for f in dataclasses.fields(Settings)]
    assert len(names) == len(set(names))
    assert all(n.startswith("OS1_") for n in names)
    assert "| `OS1_PORT` | `--port` | `8080` |" in settings_markdown()


def test_overrides_beat_env_and_none_overrides_are_ignored() -> None:
    env = {"OS1_PORT": "9000", "OS1_HISTORY": "10"}
    s = Settings.load(env, port=7000, history=None)
    assert (s.port, s.history) == (7000, 10)


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OS1_MAX_TEXT", "77")
    assert Settings.load().max_text == 77


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("OS1_PORT", "abc"), ("OS1_PORT", "-1"), ("OS1_PORT", "65536"), ("OS1_PORT", "80.5"),
        ("OS1_PORT", ""),
        ("OS1_MAX_FRAME", "0"), ("OS1_MAX_FRAME", "-5"), ("OS1_MAX_FRAME", "64k"),
        ("OS1_MAX_TEXT", "0"), ("OS1_HISTORY", "0"), ("OS1_SEND_QUEUE", "1.5"),
        ("OS1_RATE_BURST", "0"), ("OS1_RATE_STRIKES", "none"),
        ("OS1_RATE_LIMIT", "0"), ("OS1_RATE_LIMIT", "-1"), ("OS1_RATE_LIMIT", "nan"),
        ("OS1_RATE_LIMIT", "fast"), ("OS1_RATE_WINDOW", "0"), ("OS1_HELLO_TIMEOUT", "-0.1"),
        ("OS1_CID_TTL", "x"), ("OS1_DRAIN_TIMEOUT", "0"),
        ("OS1_LOG_FORMAT", "xml"), ("OS1_LOG_FORMAT", "JSON"), ("OS1_LOG_FORMAT", ""),
    ],
)
def test_bad_values_raise_config_error_naming_the_env_var(var: str, value: str) -> None:
    with pytest.raises(ConfigError) as e:
        Settings.load({var: value})
    assert var in str(e.value)
    assert repr(value) in str(e.value)


def test_bad_override_names_the_flag() -> None:
    with pytest.raises(ConfigError, match="--max-frame"):
        Settings.load({}, max_frame="zero")


def test_config_error_says_what_the_setting_takes() -> None:
    with pytest.raises(ConfigError, match="json or console"):
        Settings.load({"OS1_LOG_FORMAT": "xml"})
    with pytest.raises(ConfigError, match="positive"):
        Settings.load({"OS1_MAX_FRAME": "0"})


@pytest.mark.parametrize("port", ["0", "65535"])
def test_port_bounds(port: str) -> None:
    assert Settings.load({"OS1_PORT": port}).port == int(port)


# ---- the signing secret -------------------------------------------------------------------

def test_secret_is_created_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    first = load_or_create_secret(data_dir)
    path = data_dir / "secret"
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    mtime = path.stat().st_mtime_ns
    assert load_or_create_secret(data_dir) == first
    assert path.stat().st_mtime_ns == mtime  # not rewritten
    assert path.read_text().strip() == first


def test_secrets_differ_between_data_dirs(tmp_path: Path) -> None:
    assert load_or_create_secret(tmp_path / "a") != load_or_create_secret(tmp_path / "b")


def test_existing_secret_is_used(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("my-own-secret\n")
    assert load_or_create_secret(tmp_path) == "my-own-secret"


def test_empty_secret_file_does_not_crash_start_up(tmp_path: Path) -> None:
    # A crash between creating the file and writing it leaves it empty; the next start
    # must either write a fresh secret or fail with a ConfigError that says what to do.
    (tmp_path / "secret").write_text("")
    try:
        secret = load_or_create_secret(tmp_path)
    except ConfigError:
        return
    assert secret
    assert load_or_create_secret(tmp_path) == secret


def test_with_defaults_filled_creates_and_reuses_secret(tmp_path: Path) -> None:
    s = Settings(data_dir=str(tmp_path)).with_defaults_filled()
    assert s.secret and s.node and s.data_dir == str(tmp_path)
    assert s.secret == (tmp_path / "secret").read_text().strip()
    assert Settings(data_dir=str(tmp_path)).with_defaults_filled().secret == s.secret


def test_explicit_secret_and_node_win(tmp_path: Path) -> None:
    s = Settings(data_dir=str(tmp_path), secret="given", node="n7").with_defaults_filled()
    assert (s.secret, s.node) == ("given", "n7")
    assert not (tmp_path / "secret").exists()


def test_default_node_name_is_host_and_pid(tmp_path: Path) -> None:
    node = Settings(data_dir=str(tmp_path), secret="k").with_defaults_filled().node
    assert node.endswith(f"-{os.getpid()}")
