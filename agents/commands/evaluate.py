"""`reconrl eval`: closed-loop evaluation with RAD's metrics table (Markdown + JSON)."""
from __future__ import annotations

import json
import time

import jax
import numpy as np

from agents.scenario_source import add_bank_arguments, bank_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a policy in closed loop and print RAD's metrics")
    p.add_argument("--policy", default="expert", help="scripted policy: expert or constant-velocity (default %(default)s)")
    p.add_argument("--action-space", default="discrete", help="discrete (RAD anchors) or continuous")
    p.add_argument("--json", default=None, help="write the metrics table to this JSON file")
    p.add_argument("--eval-seed", type=int, default=0, help="PRNG seed of the rollouts")
    p.add_argument("--checkpoint", default=None, help="learned policy: a run directory (policy_il/, policy_rl/) or a policy directory")
    p.add_argument("--daa", default="none", help="with --checkpoint: none, all, or one DAA behaviour (default %(default)s)")
    add_bank_arguments(p, split="heldout", num=200)
    p.set_defaults(run=run)


def evaluate_scripted(args) -> dict:
    from agents.baselines import make_policy
    from agents.evaluation import evaluate
    from jaxsim.env import DrivingEnv, EnvConfig

    env = DrivingEnv(EnvConfig(action_space=args.action_space, obs="none"))
    policy = make_policy(args.policy, env)
    bank = bank_from_args(args)
    params = env.default_params(bank)
    ids = np.arange(bank.num_scenarios)
    row, _ = evaluate(env, params, policy, ids, jax.random.PRNGKey(args.eval_seed))
    return {args.policy: row}


def run(args) -> int:
    from jaxsim.metrics import markdown_table

    start = time.perf_counter()
    if args.checkpoint:
        from agents.eval_learned import evaluate_checkpoint

        learned = evaluate_checkpoint(args.checkpoint, bank_from_args(args), args.daa, args.eval_seed)
        rows = {name: r["mean"] for name, r in learned.items()}  # mean over seeds
    else:
        rows = evaluate_scripted(args)
    print(markdown_table(rows))
    print(f"({time.perf_counter() - start:.1f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "split": args.split, "bank": args.bank}, f, indent=2)
        print(f"wrote {args.json}")
    return 0
