"""The ``speedlab`` command: parse arguments, call one library function, print the answer.

No logic lives here. Each subcommand is a pair: ``_add_NAME(subparsers, common)`` declares its
arguments, ``_run_NAME(args, config)`` calls the library and prints; :data:`COMMANDS` lists
them. Every speedlab error becomes one line on stderr and exit status 1 (2 for bad usage).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Sequence

from . import __version__
from .config import Config, load_config
from .errors import SpeedlabError


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, default=str))


# --------------------------------------------------------------------------- config
def _add_config(sub, common) -> None:
    parser = sub.add_parser("config", parents=[common], help="show the resolved configuration",
                            description="Show the configuration speedlab resolved from defaults, "
                                        "speedlab.toml, SPEEDLAB_* variables and flags (secrets masked).")
    parser.add_argument("action", choices=["show"], help="'show': print it as JSON")


def _run_config(args, config: Config) -> int:
    _print_json(config.show())
    return 0


#: subcommand name -> (declare arguments, run). Order is the order of ``--help``.
COMMANDS: dict[str, tuple[Callable, Callable]] = {
    "config": (_add_config, _run_config),
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (used by :func:`main` and by tests of ``--help``)."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("--store", default=argparse.SUPPRESS,
                       help="where data lives: a folder, file:///path or s3:// "
                            "(default: $SPEEDLAB_STORE, speedlab.toml, ./speedlab-data)")
    group.add_argument("--config", default=argparse.SUPPRESS, metavar="FILE",
                       help="speedlab.toml to read (default: $SPEEDLAB_CONFIG, ./speedlab.toml)")
    group.add_argument("--timezone", default=argparse.SUPPRESS, metavar="ZONE",
                       help="IANA time zone for slots and periods (default Asia/Kolkata)")
    parser = argparse.ArgumentParser(
        prog="speedlab", parents=[common],
        description="Measure your internet speed on every host, roll results up into hourly, "
                    "daily, weekly, monthly and yearly summaries, and look at them.")
    parser.add_argument("--version", action="version", version=f"speedlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add, _ in COMMANDS.values():
        add(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        config = load_config(getattr(args, "config", None), store=getattr(args, "store", None),
                             timezone=getattr(args, "timezone", None),
                             host_id=getattr(args, "host_id", None) if args.command == "collect" else None)
        return COMMANDS[args.command][1](args, config) or 0
    except SpeedlabError as exc:
        print(f"speedlab {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"speedlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
