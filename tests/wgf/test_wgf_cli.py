"""`icctrl wgf`: registered, writes the contract's JSON keys, reports bad input as a clean error."""

import json

from icctrl.cli import build_parser, main


def test_wgf_command_is_registered():
    args = build_parser().parse_args(["wgf", "ou", "--dim", "16", "--json", "x.json"])
    assert args.command == "wgf" and args.problem == "ou" and args.dim == 16 and callable(args.func)


def test_ou_writes_the_documented_keys(tmp_path):
    out = tmp_path / "ou.json"
    rc = main(["wgf", "ou", "--dim", "2", "--steps", "2", "--iters", "10", "--particles", "2000", "--quiet",
               "--device", "cpu", "--json", str(out)])
    data = json.loads(out.read_text())
    assert rc == 0 and set(data) == {"dim", "steps", "log10_symkl", "seconds_per_step"}
    assert data["dim"] == 2 and data["steps"] == 2 and data["log10_symkl"] < 0 and data["seconds_per_step"] > 0


def test_bad_dimension_is_reported(capsys):
    assert main(["wgf", "ou", "--dim", "0", "--quiet"]) == 2
    assert "dimension must be >= 1, got 0" in capsys.readouterr().err
