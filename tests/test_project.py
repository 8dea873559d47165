"""Project hygiene: every command documented, types checked."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.cli import COMMANDS, build_parser
from tests.conftest import ROOT


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    helps = {choice.dest: choice.help for choice in sub._choices_actions}  # type: ignore[attr-defined]
    for name in COMMANDS:
        assert helps.get(name), f"`triage {name}` has no help text"
        assert f"triage {name}" in readme, f"`triage {name}` is not in the README"


def test_python_m_bot_shows_help() -> None:
    done = subprocess.run([sys.executable, "-m", "bot", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "check-config" in done.stdout


@pytest.mark.slow
def test_types_check() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]


@pytest.mark.parametrize("rows", ["0", "-3", "abc"])
def test_train_refuses_a_row_count_that_is_not_positive(rows: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["train", "--sentiment-rows", rows])
    assert exit_info.value.code == 2
    assert "--sentiment-rows" in capsys.readouterr().err


def test_train_takes_a_positive_row_count() -> None:
    assert build_parser().parse_args(["train", "--sentiment-rows", "2000"]).sentiment_rows == 2000
    assert build_parser().parse_args(["train"]).sentiment_rows is None
