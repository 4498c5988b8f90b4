"""`reconrl bench sim|daa|ctg|render|train [--json out.json]`: throughput benchmarks."""

from __future__ import annotations

import importlib
import platform

import jax

BENCHES = ("sim", "daa", "ctg", "render", "train")


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="throughput benchmarks (env-steps/s, images/s, ...)")
    bsub = p.add_subparsers(dest="bench", required=True, metavar="{" + ",".join(BENCHES) + "}")
    for name in BENCHES:
        bp = bsub.add_parser(name, help=f"benchmark {name}")
        bp.add_argument("--json", default=None, help="write the results to this JSON file")
        try:
            # bench modules keep their top-level imports light (torch etc. load in run)
            module = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"benchmarks.{name}":
                raise
            continue
        module.add_arguments(bp)
    p.set_defaults(run=run)


def device_info() -> dict:
    dev = jax.devices()[0]
    return {
        "jax_backend": jax.default_backend(),
        "device": getattr(dev, "device_kind", str(dev)),
        "jax": jax.__version__,
        "python": platform.python_version(),
    }


def run(args) -> int:
    from jaxsim.io_utils import check_output_file, write_json

    if args.json:
        check_output_file(args.json, "--json")  # before the benchmark, not after it
    results = importlib.import_module(f"benchmarks.{args.bench}").run(args)
    results = {"bench": args.bench, **device_info(), **results}
    if args.json:
        write_json(args.json, results)  # atomic; NaN -> null
        print(f"wrote {args.json}")
    return 0
