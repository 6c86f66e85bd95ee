"""The `crystream` command: subcommands index, demo, serve, geometry and asapo-reset."""

from __future__ import annotations

import argparse
import importlib
import sys

from flows.commands import SUBCOMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crystream",
        description="Real-time serial crystallography on Dask, writing CrystFEL streams.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"flows.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"flows.commands.{name}":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
