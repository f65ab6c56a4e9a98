"""The Dockerfile, checked statically and by replaying its steps (no Docker engine here):
its COPY sources exist, its ENV names are real settings, and the image's install + CMD +
HEALTHCHECK work in a fresh virtualenv with the image's environment."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from server.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def env_of(kind: str = "ENV") -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in instructions():
        if word == kind:
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def test_static_shape() -> None:
    steps = instructions()
    words = [w for w, _ in steps]
    assert steps[0][0] == "FROM" and steps[0][1].startswith("python:3.11")
    for word, rest in steps:
        if word == "COPY":
            *sources, _ = rest.split()
            for src in sources:
                assert (ROOT / src).exists(), f"COPY {src}: no such path in the repo"
    assert "USER" in words and dict(steps)["USER"] != "root"
    assert "HEALTHCHECK" in words and "/healthz" in dict(steps)["HEALTHCHECK"]
    assert dict(steps)["CMD"] == '["os1", "serve"]'
    known = {f.metadata["env"] for f in fields(Settings)}
    os1_env = {k for k in env_of() if k.startswith("OS1_")}
    assert os1_env <= known, f"unknown settings in ENV: {os1_env - known}"


def install_like_the_image(tmp_path: Path) -> Path:
    """RUN pip install . into a fresh venv, from a copy holding only what the image COPYs."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    app = tmp_path / "app"
    app.mkdir()
    for word, rest in instructions():
        if word == "COPY":
            *sources, dest = rest.split()
            for src in sources:
                target = app / (Path(src).name if dest.endswith("/") or dest == "./" else dest)
                subprocess.run(["cp", "-r", str(ROOT / src), str(target)], check=True)
    subprocess.run([str(venv / "bin/pip"), "install", "-q", str(app)], check=True, timeout=600,
                   env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    return venv


@pytest.mark.timeout(600)  # a real pip install into a fresh venv
async def test_replay_install_cmd_and_healthcheck(tmp_path: Path) -> None:
    venv = await asyncio.to_thread(install_like_the_image, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS1_")}
    env.update(env_of())
    env.update(OS1_HOST="127.0.0.1", OS1_PORT="0", OS1_DATA_DIR=str(tmp_path / "data"))
    proc = await asyncio.create_subprocess_exec(
        str(venv / "bin/os1"), "serve", env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            while not (m := re.search(rb"OS1 hub on (http://\S+)", await proc.stdout.readline())):
                pass
        health = dict(instructions())["HEALTHCHECK"].split("CMD", 1)[1].strip()
        health = health.replace("http://127.0.0.1:8080", m.group(1).decode())
        check = await asyncio.create_subprocess_exec(str(venv / "bin/python"), "-c",
                                                     shlex.split(health)[2])
        async with asyncio.timeout(10):
            assert await check.wait() == 0
    finally:
        proc.terminate()
        async with asyncio.timeout(15):
            assert await proc.wait() == 0
