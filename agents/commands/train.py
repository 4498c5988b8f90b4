"""`reconrl train [--config configs/X.yaml] [--set key=value ...] [--out runs/NAME]`.

With no arguments: the embedded default (configs/default.yaml) end to end on a CPU:
IL, PPO from IL, held-out evaluation of both with and without DAA adversaries, and the
comparison table. An existing run directory is resumed from its last checkpoint when
its saved config matches; `--fresh` starts over.

Everything is checked before anything on disk changes: the config, the scenario files
(loaded and validated), the `--json` path and the run directory. `--fresh` deletes only
a directory that is recognisably one of our runs: it holds the marker file `RUN_MARKER`
(written when the run directory is created) or, for runs made before the marker, a
`config.yaml` with exactly our config sections. Any other non-empty folder is refused,
with or without `--fresh`.
"""

from __future__ import annotations

import os
import shutil

DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "default.yaml")
RUN_MARKER = ".reconrl-run"


class RunDirError(ValueError):
    """`--out` names something that is not (and cannot become) a run directory of ours."""


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="IL then PPO on the scenario bank, evaluated on the held-out split")
    p.add_argument("--config", default=None, help="YAML config (default: configs/default.yaml)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set ppo.lr=1e-4 (repeatable)",
    )
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


def is_run_dir(out: str) -> bool:
    """True if `out` is a run directory written by `reconrl train` (marker or legacy layout)."""
    import yaml

    from agents.train_config import TrainConfig, config_to_dict

    if os.path.isfile(os.path.join(out, RUN_MARKER)):
        return True
    saved = os.path.join(out, "config.yaml")
    if not os.path.isfile(saved):
        return False
    try:
        with open(saved) as f:
            old = yaml.safe_load(f)
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(old, dict) and set(old) - {"train"} == set(config_to_dict(TrainConfig())) - {"train"}


def check_out(out: str, fresh: bool) -> None:
    """Refuse an `--out` we must not write into (or delete); changes nothing on disk."""
    from jaxsim.io_utils import check_output_dir

    check_output_dir(out, "--out")
    if os.path.isdir(out) and os.listdir(out) and not is_run_dir(out):
        action = "delete" if fresh else "write into"
        raise RunDirError(
            f"--out {out!r} is a non-empty folder that is not a reconrl run directory (no {RUN_MARKER} marker); "
            f"refusing to {action} it. Give a new or empty folder, or an existing run directory"
        )
    if fresh and os.path.isdir(out) and not os.access(os.path.dirname(os.path.abspath(out)), os.W_OK):
        raise RunDirError(f"--out {out!r}: --fresh cannot delete it (its parent folder is not writable)")


def prepare_out(cfg, out: str, fresh: bool) -> None:
    """Create `out`; refuse to resume a run whose saved config differs (names the keys).

    `--fresh` deletes `out` first, but only a recognisable run directory (`check_out`).
    """
    import yaml

    from agents.train_config import config_to_dict
    from jaxsim.io_utils import write_text

    check_out(out, fresh)
    saved = os.path.join(out, "config.yaml")
    if fresh and os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)
    current = config_to_dict(cfg)
    if os.path.exists(saved):
        with open(saved) as f:
            old = yaml.safe_load(f)
        # `train.*` says where the run executes (devices, hosts), not what it computes: a run
        # saved on N devices resumes on M (checkpoints restore onto the current mesh)
        diff = sorted(d for d in _diff(old, current) if d != "train" and not d.startswith("train."))
        if diff:
            raise ValueError(f"{out} holds a run with a different config (keys {diff}); use --fresh or another --out")
        print(f"resuming {out} from its last checkpoint")
    write_text(os.path.join(out, RUN_MARKER), "reconrl train run directory: `reconrl train --fresh` may delete it\n")
    write_text(saved, yaml.safe_dump(current, sort_keys=False))


def load_inputs(cfg):
    """(train, held-out) banks for a file source, loaded and validated now (None: procedural).

    Raises ValueError naming the missing key or the bad file, before any output is touched.
    """
    sc = cfg.scenarios
    if sc.source != "file":
        return None
    from jaxsim.bank_io import load_bank

    for name in ("train_path", "heldout_path"):
        if not getattr(sc, name):
            raise ValueError(f"'scenarios.{name}' is required when scenarios.source is 'file'")
    return load_bank(sc.train_path), load_bank(sc.heldout_path)


def _diff(a, b, prefix=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in set(a) | set(b):
            yield from _diff(a.get(k), b.get(k), f"{prefix}{k}.")
    elif a != b:
        yield prefix.rstrip(".")


def _prepare_out_once(cfg, out: str, fresh: bool) -> None:
    """`prepare_out` for runs over several processes sharing `out`: joins the run
    (`jax.distributed`, before anything touches a JAX backend), process 0 prepares
    (and with --fresh deletes) `out`, then the others check it."""
    import jax

    from agents.sharding import initialize_distributed

    if initialize_distributed(cfg.train) == 1:
        return prepare_out(cfg, out, fresh)
    from jax.experimental import multihost_utils

    if jax.process_index() == 0:
        prepare_out(cfg, out, fresh)
    multihost_utils.sync_global_devices("reconrl train: run directory ready")
    if jax.process_index() != 0:
        prepare_out(cfg, out, fresh=False)


def run(args) -> int:
    from jaxsim.io_utils import check_output_file, write_json

    cfg, out = resolve(args)
    if args.json:
        check_output_file(args.json, "--json")
    check_out(out, args.fresh)
    banks = load_inputs(cfg)
    if cfg.env.obs == "camera":
        prepare_out(cfg, out, args.fresh)
    else:
        _prepare_out_once(cfg, out, args.fresh)
    from agents.trainer import run_training

    results = run_training(cfg, out, banks=banks)
    print(f"run directory: {out} (results.md, results.json, policy_il/, policy_rl/)")
    if args.json:
        write_json(args.json, results)
        print(f"wrote {args.json}")
    return 0
