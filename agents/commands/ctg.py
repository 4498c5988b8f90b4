"""`reconrl ctg stats --out DIR [--num N] [--k K]`: cousin diversity report (PNG + JSON)."""

from __future__ import annotations

import os

from agents.scenario_source import add_bank_arguments, bank_from_args
from jaxsim.io_utils import check_output_dir, check_output_file, write_json


def add_parser(sub) -> None:
    p = sub.add_parser("ctg", help="Cousin Trajectory Generator tools")
    csub = p.add_subparsers(dest="ctg_command", required=True, metavar="{stats}")
    s = csub.add_parser("stats", help="curvature / lateral / speed distributions of logs vs logs + cousins")
    s.add_argument("--out", required=True, help="output directory (ctg_stats.json, ctg_stats.png)")
    s.add_argument("--k", type=int, default=8, help="cousins per scenario (default %(default)s)")
    s.add_argument("--key", type=int, default=0, help="PRNG seed of the cousin sampler (default %(default)s)")
    s.add_argument("--chunk", type=int, default=256, help="scenarios per vectorised chunk (default %(default)s)")
    s.add_argument("--json", default=None, help="also write the report to this path")
    add_bank_arguments(s, split="train", num=200)
    p.set_defaults(run=run)


def run(args) -> int:
    import jax
    import jax.numpy as jnp

    from jaxsim.ctg import CTGConfig, sample_cousins
    from jaxsim.ctg.stats import diversity_report, plot_report
    from jaxsim.env import DrivingEnv, EnvConfig

    if args.k < 1:
        raise ValueError(f"--k must be >= 1, got {args.k}")
    if args.chunk < 0:
        raise ValueError(f"--chunk must be >= 0, got {args.chunk}")
    check_output_dir(args.out, "--out")  # before the work, not after it
    if args.json:
        check_output_file(args.json, "--json")
    bank = bank_from_args(args)
    params = DrivingEnv(EnvConfig(obs="none")).default_params(bank)
    n = bank.ego_traj.shape[0]
    cfg = CTGConfig(num_cousins=args.k)
    sample = jax.jit(sample_cousins, static_argnames=("cfg", "batched_params", "chunk"))
    cousins = jax.device_get(
        sample(jax.random.PRNGKey(args.key), params, jnp.arange(n, dtype=jnp.int32), cfg, chunk=args.chunk)
    )
    report = diversity_report(jax.device_get(bank), cousins)
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, "ctg_stats.json")
    png_path = os.path.join(args.out, "ctg_stats.png")
    for path in [json_path] + ([args.json] if args.json else []):
        write_json(path, report)
    plot_report(report, png_path)
    sb = report["straight_bias"]
    print(
        f"{n} logs, {report['accepted_cousins']} accepted cousins ({report['acceptance']['rate']:.1%} of {n * args.k})"
    )
    print(
        f"straight steps:     {sb['logs']['straight_step_fraction']:.3f} -> {sb['logs_plus_cousins']['straight_step_fraction']:.3f}"
    )
    print(
        f"|lateral| < 1 m:    {sb['logs']['small_lateral_fraction']:.3f} -> {sb['logs_plus_cousins']['small_lateral_fraction']:.3f}"
    )
    print(
        f"straight a_x bin:   {sb['logs']['straight_action_fraction']:.3f} -> {sb['logs_plus_cousins']['straight_action_fraction']:.3f}"
    )
    print(f"rejections: {report['acceptance']['rejections']}")
    print(f"wrote {json_path} and {png_path}")
    return 0
