"""`crystream asapo-reset`: move a consumer group's last-read marker back (default: to the start).

CrystFEL's docs say such a tool is "pending"; without it a rerun with the same group continues
where the previous run stopped. Exit status 0 on success, 1 with a one-line error otherwise.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "asapo-reset", help="reset an ASAP::O consumer group to the start of a stream",
        description="Reset the last-read marker (and pending acknowledgements) of an ASAP::O "
                    "consumer group, so the next run with this group reads the stream again.")
    p.add_argument("--asapo-endpoint", required=True, metavar="HOST:PORT")
    tok = p.add_mutually_exclusive_group()
    tok.add_argument("--asapo-token", metavar="TOKEN", help="beamtime token")
    tok.add_argument("--asapo-token-file", metavar="FILE", help="read the token from this file")
    p.add_argument("--asapo-beamtime", required=True, metavar="ID")
    p.add_argument("--asapo-source", required=True, metavar="NAME")
    p.add_argument("--asapo-group", required=True, metavar="ID")
    p.add_argument("--asapo-stream", default="default", metavar="NAME")
    p.add_argument("--to", type=int, default=0, metavar="N",
                   help="the next read returns message N+1 (default 0: from the start)")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    from readers.asapo_source import reset_group
    from readers.errors import SourceOptionError
    from readers.options import read_token_file

    token = None
    try:
        token = read_token_file(args.asapo_token_file) if args.asapo_token_file else args.asapo_token
        reset_group(args.asapo_endpoint, token, args.asapo_beamtime, args.asapo_source,
                    args.asapo_group, args.asapo_stream, args.to)
    except SourceOptionError as exc:
        print(f"crystream asapo-reset: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - asapo_consumer errors, one line, token redacted
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if token:
            text = text.replace(token, "***")
        print(f"crystream asapo-reset: {type(exc).__name__}: {text}", file=sys.stderr)
        return 1
    print(f"group '{args.asapo_group}' of {args.asapo_beamtime}/{args.asapo_source}/"
          f"{args.asapo_stream} reset: the next read is message {args.to + 1}")
    return 0
