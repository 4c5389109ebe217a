"""The `icctrl` command line: one sub-command per module in `icctrl.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys

from icctrl._version import __version__
from icctrl.errors import IcctrlError

# Each name is a module icctrl.commands.<name> with a `register(subparsers)` function.
COMMANDS = ("check", "train", "demo", "mpc", "bench", "soak", "schedule", "pv", "ot", "wgf", "analysis", "prune",
            "convexnn")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="icctrl", description="Real-time convex MPC with input-convex neural networks."
    )
    parser.add_argument("--version", action="version", version=f"icctrl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"icctrl.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"icctrl.commands.{name}":
                continue  # command not shipped in this version
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except IcctrlError as exc:
        print(f"icctrl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"icctrl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
