"""`icctrl prune --quick` runs its parts and writes JSON after each."""

import json

from icctrl.cli import main


def test_prune_quick_parts_write_json(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["prune", "--quick", "--parts", "sparse_recovery,scaling", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert set(d) >= {"program_certificate", "sparse_recovery", "scaling"} and "digits" not in d
    assert d["program_certificate"]["convex"]
    assert "sparse recovery" in capsys.readouterr().out


def test_prune_unknown_part_is_an_error(capsys):
    assert main(["prune", "--quick", "--parts", "cifar"]) == 2
    assert "cifar" in capsys.readouterr().err
