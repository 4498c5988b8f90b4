"""Where commands get scenarios: a saved bank file or the embedded procedural default."""

from __future__ import annotations

import argparse


def add_bank_arguments(parser: argparse.ArgumentParser, split: str = "heldout", num: int = 200) -> None:
    g = parser.add_argument_group("scenarios")
    g.add_argument("--bank", default=None, help="scenario bank .npz (default: generate the embedded procedural set)")
    g.add_argument(
        "--split", default=split, help="procedural split: train, heldout or validation (default %(default)s)"
    )
    g.add_argument("--num", type=int, default=num, help="number of procedural scenarios (default %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="procedural generator seed (default %(default)s)")


def bank_from_args(args):
    """Load `args.bank`, or generate `args.num` procedural scenarios of `args.split`."""
    if args.bank:
        from jaxsim.bank_io import load_bank

        return load_bank(args.bank)
    if args.num < 1:
        raise ValueError(f"--num must be >= 1, got {args.num}")
    from jaxsim.procedural import generate_bank

    return generate_bank(args.num, split=args.split, seed=args.seed)
