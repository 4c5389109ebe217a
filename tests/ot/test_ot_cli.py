"""`icctrl ot`: registered in the CLI, and a bad dimension is a clean error, not a traceback."""

from icctrl.cli import build_parser, main


def test_ot_command_is_registered():
    args = build_parser().parse_args(["ot", "--pair", "w2bench", "--dim", "16", "--method", "monge"])
    assert args.command == "ot" and args.dim == 16 and args.method == "monge" and callable(args.func)


def test_bad_dimension_is_reported(capsys):
    assert main(["ot", "--dim", "0", "--iters", "1", "--quiet"]) == 2
    assert "dimension must be >= 1, got 0" in capsys.readouterr().err
