"""One module per `crystream` subcommand, each with add_parser(subparsers) and run(args)."""

SUBCOMMANDS = ("index", "demo", "serve", "geometry", "asapo_reset")
