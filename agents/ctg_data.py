"""CTG cousin pairs for imitation learning (the paper's IL data beyond the expert log).

Wraps `jaxsim.ctg.imitation.imitation_batch`: one batch of K cousins per training
scenario, labelled by the cousin's own controls, returned as `agents.il.Pairs` with the
continuous label normalised like the expert pairs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from agents.il import Pairs, normalise_controls


def cousin_pairs(env, params, cfg, key=None) -> Pairs:
    from jaxsim.ctg.config import CTGConfig
    from jaxsim.ctg.imitation import imitation_batch

    n = params.bank.num_scenarios
    key = jax.random.PRNGKey(cfg.seed + 11) if key is None else key
    batch = imitation_batch(key, env, params, n, CTGConfig(num_cousins=cfg.ctg.num_cousins), scenario_idx=jnp.arange(n))
    return Pairs(
        obs=batch["obs"],
        action_discrete=batch["action_discrete"].astype(jnp.int32),
        action_continuous=normalise_controls(batch["action_continuous"], params.dynamics),
        valid=batch["valid"],
    )
