"""`reconrl eval`: closed-loop evaluation with RAD's metrics table (Markdown + JSON)."""

from __future__ import annotations

import time

import jax
import numpy as np

from agents.scenario_source import add_bank_arguments, bank_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a policy in closed loop and print RAD's metrics")
    p.add_argument(
        "--policy",
        default="expert",
        help="scripted policy: expert, constant-velocity or yielding (default %(default)s)",
    )
    p.add_argument(
        "--substeps",
        type=int,
        default=None,
        help="scripted policy: log steps per decision (default 1; learners and --policy-url use 5)",
    )
    p.add_argument(
        "--traffic",
        default="log",
        help="scripted policy: other agents' actors, log (replay) or idm (reactive) (default %(default)s); a checkpoint keeps its training config's",
    )
    p.add_argument("--action-space", default="discrete", help="discrete (RAD anchors) or continuous")
    p.add_argument("--json", default=None, help="write the metrics table to this JSON file")
    p.add_argument("--eval-seed", type=int, default=0, help="PRNG seed of the rollouts")
    p.add_argument(
        "--checkpoint",
        default=None,
        help="learned policy: a run directory (policy_il/, policy_rl/) or a policy directory",
    )
    p.add_argument("--daa", default="none", help="DAA adversaries: none, all, or one behaviour (default %(default)s)")
    add_bank_arguments(p, split="heldout", num=200)
    r = p.add_argument_group("remote policy (the release's HTTP protocol; see agents/remote_policy.py)")
    r.add_argument(
        "--policy-url",
        default=None,
        help="drive the policy served at http://HOST:PORT (e.g. `reconrl serve` or the release's)",
    )
    r.add_argument(
        "--render-size",
        default="180x320",
        help="HEIGHTxWIDTH of each of the six nuScenes cameras (release: 450x800) (default %(default)s)",
    )
    r.add_argument("--render-backend", default="auto", help="gsplat, reference (CPU) or auto (default %(default)s)")
    r.add_argument(
        "--render-gaussians",
        type=int,
        default=0,
        help="background Gaussians per scene, 0 = the procedural default (default %(default)s)",
    )
    r.add_argument("--render-actor-gaussians", type=int, default=384, help="Gaussians per actor (default %(default)s)")
    r.add_argument("--no-buildings", action="store_true", help="procedural world without buildings (faster on a CPU)")
    r.add_argument(
        "--max-steps",
        type=int,
        default=0,
        help="decisions per episode, 0 = to the end of the log (default %(default)s)",
    )
    r.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per request (default %(default)s, the release's)"
    )
    r.add_argument(
        "--retries", type=int, default=3, help="retries of a failed request before giving up (default %(default)s)"
    )
    r.add_argument(
        "--pixel-range",
        default="255",
        choices=("255", "1"),
        help="float pixels sent as 0..255 or 0..1 (default %(default)s)",
    )
    p.set_defaults(run=run)


def evaluate_scripted(args) -> dict:
    from agents.evaluation import evaluate
    from jaxsim.drivers import scripted_policy
    from jaxsim.env import DrivingEnv, EnvConfig

    env = DrivingEnv(
        EnvConfig(action_space=args.action_space, obs="none", substeps=args.substeps or 1, traffic=args.traffic)
    )
    policy = scripted_policy(args.policy, env)
    bank = bank_from_args(args)
    params = env.default_params(bank)
    if args.daa != "none":
        return _scripted_daa(args, env, policy, params)
    ids = np.arange(bank.num_scenarios)
    row, _ = evaluate(env, params, policy, ids, jax.random.PRNGKey(args.eval_seed))
    return {args.policy: row}


def _scripted_daa(args, env, policy, params) -> dict:
    """Log replay plus DAA rows for a scripted policy, with the adversaries `reconrl train` evaluates on."""
    from agents.eval_learned import evaluate_suite, rollout_scripted, suite_behaviours

    behaviours = suite_behaviours(args.daa)
    rows = evaluate_suite(lambda p, ids, k: rollout_scripted(env, policy, p, ids, k), params, behaviours,
                          jax.random.PRNGKey(args.eval_seed))  # fmt: skip
    return {f"{args.policy} [{cond}]": r["mean"] for cond, r in rows.items()}


def run(args) -> int:
    from jaxsim.io_utils import check_output_file, write_json
    from jaxsim.metrics import markdown_table

    if args.json:
        check_output_file(args.json, "--json")  # before the evaluation, not after it
    if args.checkpoint and args.policy_url:
        raise ValueError("--checkpoint and --policy-url both name a policy; give one")
    start = time.perf_counter()
    if args.checkpoint:
        from agents.eval_learned import evaluate_checkpoint

        learned = evaluate_checkpoint(args.checkpoint, bank_from_args(args), args.daa, args.eval_seed)
        rows = {name: r["mean"] for name, r in learned.items()}  # mean over seeds
    elif args.policy_url:
        from agents.remote_policy import evaluate_remote

        rows = evaluate_remote(args, bank_from_args(args))
    else:
        rows = evaluate_scripted(args)
    print(markdown_table(rows))
    print(f"({time.perf_counter() - start:.1f} s)")
    if args.json:
        write_json(args.json, {"rows": rows, "split": args.split, "bank": args.bank})  # atomic; NaN -> null
        print(f"wrote {args.json}")
    return 0
