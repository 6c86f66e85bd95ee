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
    """Run a subcommand; a bad option, geometry or cell file ends it with one line, status 2."""
    from crystream.cellfile import CellError
    from crystream.geometry.parser import GeometryError
    from flows.options import OptionError
    from readers.errors import SourceOptionError

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        args.argv = argv[1:]
        return int(args.run(args) or 0)
    except (OptionError, SourceOptionError, GeometryError, CellError) as exc:
        print(f"crystream: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
