"""DAA plumbing for the learners: per-env adversary parameters for training and evaluation.

Training envs each carry their own `DAAParams` (behaviour drawn from the configured mix,
knobs uniform in the behaviour's ranges) in batched `EnvParams`; evaluation uses one
behaviour at a time so each gets its own row in the results table.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsim.wrappers import broadcast_params


def daa_available() -> bool:
    try:
        from jaxsim.daa.params import sample_params  # noqa: F401
    except ImportError:
        return False
    import jaxsim.env as env_mod

    return "daa" in {f.name for f in env_mod.EnvParams.__dataclass_fields__.values()}


def _weights(behaviours) -> tuple:
    from jaxsim.daa.params import BEHAVIOUR_NAMES

    unknown = [b for b in behaviours if b not in BEHAVIOUR_NAMES[1:]]
    if unknown:
        raise ValueError(f"'daa.behaviours' has unknown {unknown}; allowed: {list(BEHAVIOUR_NAMES[1:])}")
    return tuple(float(name in behaviours) for name in BEHAVIOUR_NAMES)


def with_daa(params, num_envs: int, behaviours, key, keep_unavoidable: bool = False):
    """Batched EnvParams (leading num_envs on all but the bank) with sampled DAA adversaries.

    behaviours: names from `jaxsim.daa.params.BEHAVIOUR_NAMES`; empty -> DAA off (plain
    log replay), still batched so the same program serves both. With reactive traffic
    the configured share of envs gets IDM actors (`jaxsim.traffic.mix_actors`).
    keep_unavoidable: keep adversary plans no driver could avoid (config
    `daa.keep_unavoidable`; stress tests).
    """
    from jaxsim.traffic import mix_actors

    batched = mix_actors(broadcast_params(params, num_envs))
    if not behaviours:
        return batched
    from jaxsim.daa.params import DAAConfig, sample_params

    config = DAAConfig(weights=_weights(behaviours), keep_unavoidable=keep_unavoidable)
    return batched.replace(daa=sample_params(key, num_envs, config))


def eval_conditions(behaviours, with_daa_rows: bool) -> list[tuple[str, tuple]]:
    """[(row name, behaviours)]: DAA off first, then one row per behaviour."""
    rows = [("log-replay", ())]
    if with_daa_rows and daa_available():
        rows += [(b, (b,)) for b in behaviours]
    return rows


def stack_params(parts: list):
    """Concatenate batched EnvParams along the env axis (the bank is shared)."""
    rest = jax.tree.map(lambda *xs: jnp.concatenate(xs), *[p.replace(bank=None) for p in parts])
    return rest.replace(bank=parts[0].bank)
