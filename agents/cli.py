"""`reconrl` command line: one entry point, one module per sub-command.

Each module in `agents.commands` defines `add_parser(subparsers)` and `run(args) -> int`.
Modules are imported lazily so `reconrl scenarios ...` does not pay for torch or brax.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command -> module under agents.commands
COMMANDS = {
    "train": "train",
    "eval": "evaluate",
    "bench": "bench",
    "scenarios": "scenarios",
    "render": "render",
    "ctg": "ctg",
    "recon": "recon",
    "serve": "serve",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reconrl", description="ReconDreamer-RL in JAX: closed-loop driving RL")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    for module in COMMANDS.values():
        try:
            mod = importlib.import_module(f"agents.commands.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"agents.commands.{module}":
                raise
            continue
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        # configuration and input errors: one clear line, no traceback
        print(f"reconrl {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
