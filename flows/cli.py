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
    """Run a subcommand. A bad option ends it with one line and status 2 (as argparse does);
    a broken geometry or cell file with one line naming file:line and status 1."""
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
    except (OptionError, SourceOptionError) as exc:
        print(f"crystream: {exc}", file=sys.stderr)
        return 2
    except (GeometryError, CellError) as exc:
        print(f"crystream: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
