"""`icctrl check` on a saved model of each type: certificate, numeric checks and Lipschitz figures as JSON."""

import json
import math

import numpy as np
import pytest
import torch

from icctrl.cli import main
from icctrl.nn import MODELS, Scaled, build
from icctrl.train import make_checkpoint, save_checkpoint

CONVEX = {"icnn", "picnn", "icrnn", "iclrnn", "linear"}


def _save(tmp_path, name):
    torch.manual_seed(0)
    kw = {"lags": 2} if name == "linear" else {"hidden": 8, "layers": 2}
    if name == "picnn":
        kw["convex_inputs"] = [0, 1]
    core = build(name, 3, 2, **kw)
    if name == "linear":
        torch.nn.init.normal_(core.weight)
    model = Scaled(core, [1.0, 2.0, 3.0], [0.5, 1.0, 2.0], [0.0, 0.0],
                   [1.0, 1.0])
    ckpt = make_checkpoint(model, train_config={}, dataset={"window": 3}, metrics={},
                           certificate={}, extra=None)
    path = tmp_path / f"{name}.pt"
    save_checkpoint(path, ckpt)
    return path


@pytest.mark.parametrize("name", sorted(MODELS))
def test_check_writes_the_report(tmp_path, name, capsys):
    out = tmp_path / "report.json"
    assert main(["check", str(_save(tmp_path, name)), "--json", str(out), "-n", "128"]) == 0
    report = json.loads(out.read_text())
    assert report["convex"] is (name in CONVEX)
    assert isinstance(report["lipschitz_bound"], float)
    assert report["lipschitz_bound"] >= report["lipschitz_estimate"] * (1 - 1e-9)
    assert report["jensen"]["passed"] or name not in CONVEX
    if name == "iclstm":
        assert report["convex_per_step"] is True and not math.isfinite(report["lipschitz_bound"])
    assert "CONVEX" in capsys.readouterr().out or name not in CONVEX


def test_check_a_shipped_default(tmp_path):
    out = tmp_path / "r.json"
    assert main(["check", "cstr/picnn_cost", "--json", str(out), "-n", "64"]) == 0
    assert json.loads(out.read_text())["convex"] is True


def test_missing_or_corrupt_file_is_a_one_line_error(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope.pt")]) == 2
    bad = tmp_path / "bad.pt"
    bad.write_bytes(np.random.default_rng(0).bytes(200))
    assert main(["check", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("icctrl check: error:") for line in err)
