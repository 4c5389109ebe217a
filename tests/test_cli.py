"""The `icctrl` entry point: version, help, and every shipped sub-command registered."""

import subprocess
import sys

import pytest

from icctrl import __version__
from icctrl.cli import COMMANDS, build_parser, main


def test_version_and_help():
    out = subprocess.run([sys.executable, "-m", "icctrl.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"icctrl {__version__}"
    helptext = subprocess.run([sys.executable, "-m", "icctrl.cli", "--help"], capture_output=True, text=True)
    assert helptext.returncode == 0
    for name in ("check", "train", "demo", "mpc"):
        assert name in helptext.stdout


def test_every_listed_command_is_registered():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage: icctrl" in capsys.readouterr().out


def test_unknown_command_exits_with_usage_error():
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
