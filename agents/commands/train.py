"""`reconrl train [--config configs/X.yaml] [--set key=value ...] [--out runs/NAME]`.

With no arguments: the embedded default (configs/default.yaml) end to end on a CPU:
IL, PPO from IL, held-out evaluation of both with and without DAA adversaries, and the
comparison table. An existing run directory is resumed from its last checkpoint when
its saved config matches; `--fresh` starts over.
"""
from __future__ import annotations

import os
import shutil

DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "default.yaml")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="IL then PPO on the scenario bank, evaluated on the held-out split")
    p.add_argument("--config", default=None, help="YAML config (default: configs/default.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set ppo.lr=1e-4 (repeatable)")
    p.add_argument("--out", default=None, help="run directory (default: runs/<config name>)")
    p.add_argument("--fresh", action="store_true", help="delete an existing run directory first")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.set_defaults(run=run)


def resolve(args):
    """(config, out dir) from the arguments; raises ValueError on a bad key or value."""
    from agents.train_config import load_config

    path = args.config or os.path.normpath(DEFAULT_CONFIG)
    if not os.path.exists(path):
        raise FileNotFoundError(f"config file {path} not found")
    cfg = load_config(path, args.overrides)
    out = args.out or os.path.join("runs", os.path.splitext(os.path.basename(path))[0])
    return cfg, out


def prepare_out(cfg, out: str, fresh: bool) -> None:
    """Create `out`; refuse to resume a run whose saved config differs (names the keys)."""
    import yaml

    from agents.train_config import config_to_dict

    saved = os.path.join(out, "config.yaml")
    if fresh and os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)
    current = config_to_dict(cfg)
    if os.path.exists(saved):
        with open(saved) as f:
            old = yaml.safe_load(f)
        diff = sorted(_diff(old, current))
        if diff:
            raise ValueError(f"{out} holds a run with a different config (keys {diff}); use --fresh or another --out")
        print(f"resuming {out} from its last checkpoint")
    with open(saved, "w") as f:
        yaml.safe_dump(current, f, sort_keys=False)


def _diff(a, b, prefix=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in set(a) | set(b):
            yield from _diff(a.get(k), b.get(k), f"{prefix}{k}.")
    elif a != b:
        yield prefix.rstrip(".")


def run(args) -> int:
    import json

    cfg, out = resolve(args)
    prepare_out(cfg, out, args.fresh)
    from agents.trainer import run_training

    results = run_training(cfg, out)
    print(f"run directory: {out} (results.md, results.json, policy_il/, policy_rl/)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=float)
        print(f"wrote {args.json}")
    return 0
