"""`icctrl analysis`: every action runs end to end on a small grid and writes its JSON and figure."""

import json

import pytest

from icctrl.cli import main


def test_cantor_table_matches_published(tmp_path, capsys):
    assert main(["analysis", "cantor", "--k", "3", "--points", "11", "--json", str(tmp_path / "c.json")]) == 0
    rows = json.loads((tmp_path / "c.json").read_text())["rows"]
    assert [round(r["chi"]["11"], 2) for r in rows] == [r["published"]["11"] for r in rows] == [0.5, 0.69, 0.75]
    assert "published" in capsys.readouterr().out


def test_folds_of_a_shipped_model(tmp_path):
    out = tmp_path / "f.json"
    assert main(["analysis", "folds", "cstr/iclrnn", "--paths", "3", "--points", "51", "--quiet",
                 "--json", str(out)]) == 0
    s = json.loads(out.read_text())
    assert s["n_paths"] == 3 and 0 <= s["mean"] <= s["max"] < 1


def test_folds_of_a_missing_file_is_an_error(capsys):
    assert main(["analysis", "folds", "nope.pt", "--quiet"]) == 2
    assert "nope.pt" in capsys.readouterr().err


def test_digits_study_small(tmp_path):
    out, png = tmp_path / "d.json", tmp_path / "d.png"
    assert main(["analysis", "digits", "--depths", "1,2", "--widths", "8", "--seeds", "0", "--paths", "4",
                 "--points", "51", "--epochs", "2", "--quiet", "--json", str(out), "--plot", str(png)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 2 and rows[0]["chi_max"] == 0.0  # one hidden layer never folds along a line
    assert all(0 < r["test_accuracy"] <= 1 for r in rows) and png.stat().st_size > 0


def test_ntk_experiments_small(tmp_path):
    out, png = tmp_path / "n.json", tmp_path / "n.png"
    assert main(["analysis", "ntk", "--widths", "16,64", "--depth", "1", "--seeds", "0,1", "--train-widths", "32",
                 "--steps", "5", "--quiet", "--json", str(out), "--plot", str(png)]) == 0
    r = json.loads(out.read_text())
    assert len(r["width"]["median_rel_error"]) == 2 and "32" in r["training"]["networks"]
    assert r["training"]["networks"]["32"]["train_loss"][-1] < r["training"]["networks"]["32"]["train_loss"][0]
    assert png.stat().st_size > 0


@pytest.mark.parametrize("argv", [["analysis", "digits", "--depths", "0", "--quiet"]])
def test_bad_study_parameters_are_errors(argv, capsys):
    assert main(argv) == 2
    assert "depth" in capsys.readouterr().err
