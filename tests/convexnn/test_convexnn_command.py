"""`icctrl convexnn --quick` runs end to end and writes its JSON."""

import json

from icctrl.cli import main


def test_convexnn_quick_writes_json(tmp_path, capsys):
    out = tmp_path / "c.json"
    assert main(["convexnn", "--quick", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["exact_vs_sgd"]["squared"]["convex_objective"] <= d["exact_vs_sgd"]["squared"]["sgd_best"] + 1e-6
    assert "exact squared" in capsys.readouterr().out
