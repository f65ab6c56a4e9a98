"""The README's promises that can drift: every setting is in its table, and CI runs exactly
the test command it gives a newcomer."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from server.config import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table() -> None:
    rows = {m.group(1) for m in re.finditer(r"^\| `(OS1_[A-Z_]+)` \|", README, re.M)}
    names = {f.metadata["env"] for f in fields(Settings)}
    assert names - rows == set(), "settings missing from README's table"
    assert rows - names == set(), "README's table names settings that do not exist"


def test_ci_runs_the_readme_test_command() -> None:
    assert "bash scripts/test" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^exec bash scripts/test\s*$", ci, re.M)


def test_the_run_command_is_the_console_script() -> None:
    assert ".venv/bin/os1 serve" in README
    assert 'os1 = "server.cli:main"' in (ROOT / "pyproject.toml").read_text()
