"""Issue-14 training switches: PPO episodes start on CTG cousins (also after its pool
auto-resets), the reachable-anchor mask on the discrete heads, RAD's RL:IL interleaving,
and the config errors of the new keys."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from learner_fixtures import lead_car_bank, tiny_config

from agents import il, policies
from agents.networks import make_network
from agents.ppo import make_ppo
from agents.trainer import cousin_starts
from jaxsim.actions import speed_anchor_masks
from jaxsim.config_utils import ConfigError
from jaxsim.env import DrivingEnv
from jaxsim.observations import SPEED_SCALE
from jaxsim.wrappers import broadcast_params


def _ppo_setup(*overrides):
    cfg = tiny_config("ppo.num_envs=16", "ppo.num_steps=8", "ppo.num_minibatches=2", "ppo.updates_per_chunk=2",
                      "ppo.num_updates=4", *overrides)  # fmt: skip
    env = DrivingEnv(cfg.env)
    params = env.default_params(lead_car_bank())
    net = make_network(cfg.network, cfg.env, env.observation_shape(params), jax.random.PRNGKey(0))
    return cfg, env, params, net


@pytest.mark.slow
def test_ppo_episodes_start_on_cousins_also_after_auto_reset():
    # short episodes (3 decisions) so every env restarts from PPO's reset pool within a rollout
    cfg, env, params, net = _ppo_setup("ctg.enabled=true", "ctg.ppo_starts=true", "ctg.ppo_expert_share=0.0",
                                       "ctg.num_cousins=4", "env.max_steps=3")  # fmt: skip
    env_c, params_c = cousin_starts(cfg, env, params)
    assert bool(np.any(np.asarray(params_c.cousins.accepted)))
    batched = broadcast_params(params_c, cfg.ppo.num_envs)
    ppo = make_ppo(cfg.ppo, env_c, net, batched_params=True)
    runner = ppo.init(jax.random.PRNGKey(1), net.params, batched)
    runner, _ = jax.jit(ppo.update)(runner, batched)
    st = runner.env_state
    assert int(np.min(np.asarray(st.steps))) < 8  # every env restarted at least once in the rollout
    expert = np.asarray(params.bank.ego_traj)[np.asarray(st.scenario_idx)]
    differs = np.abs(np.asarray(st.route) - expert).max(axis=(1, 2)) > 0.1
    has_cousin = np.asarray(params_c.cousins.accepted).any(1)[np.asarray(st.scenario_idx)]
    np.testing.assert_array_equal(differs, has_cousin)  # restarted episodes run on cousin routes
    # without the switch the routes are the expert logs
    cfg0 = tiny_config("ctg.enabled=true")
    assert cousin_starts(cfg0, env, params) == (env, params)


def test_anchor_mask_removes_unreachable_anchors_and_keeps_expert_labels():
    cfg, env, params, _ = _ppo_setup()
    pairs = il.expert_pairs(env, params, np.arange(4)).filtered()
    speed = np.asarray(pairs.obs[:, 0]) * SPEED_SCALE
    lat_ok, lon_ok = (np.asarray(m) for m in speed_anchor_masks(speed))
    rows = np.arange(len(speed))
    a = np.asarray(pairs.action_discrete)
    assert lat_ok[rows, a[:, 0]].all() and lon_ok[rows, a[:, 1]].all()  # expert labels stay reachable
    assert lon_ok.sum(1).max() < 20  # of 61: at a given speed most longitudinal anchors are out of reach
    import dataclasses

    net_cfg = dataclasses.replace(cfg.network, anchor_mask=True)
    net = make_network(net_cfg, cfg.env, env.observation_shape(params), jax.random.PRNGKey(0))
    out = net.apply(net.params, pairs.obs)
    sampled = np.asarray(policies.sample(out, jax.random.PRNGKey(2)))
    assert lon_ok[rows, sampled[:, 1]].all() and lat_ok[rows, sampled[:, 0]].all()
    assert np.isfinite(np.asarray(policies.log_prob(out, pairs.action_discrete))).all()


def test_il_interleave_runs_an_il_update_every_nth_ppo_update():
    cfg, env, params, net = _ppo_setup("ppo.il_interleave=2")
    pairs = il.expert_pairs(env, params, np.arange(4))
    ppo = make_ppo(cfg.ppo, env, net, il_pairs=pairs)
    runner = ppo.init(jax.random.PRNGKey(1), net.params, params)
    runner, m = jax.jit(ppo.chunk)(runner, params)
    runner, m2 = jax.jit(ppo.chunk)(runner, params)
    losses_ = np.concatenate([np.asarray(m["il_interleave"]), np.asarray(m2["il_interleave"])])
    assert losses_[0] == 0.0 and losses_[2] == 0.0 and losses_[1] > 0.0 and losses_[3] > 0.0
    with pytest.raises(ValueError, match="il_interleave"):
        make_ppo(cfg.ppo, env, net)


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["ppo.reward_collisions=some"], "'ppo.reward_collisions'"),
        (["ppo.il_interleave=-1"], "'ppo.il_interleave'"),
        (["ctg.ppo_expert_share=2"], "'ctg.ppo_expert_share'"),
        (["network.anchor_mask=true", "network.encoder=cnn", "env.obs=bev"], "'network.anchor_mask'"),
    ],
)
def test_bad_training_switches_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key):
        tiny_config(*overrides)


def test_masked_policy_still_learns_from_il_pairs():
    """IL through the masked heads: the loss stays finite and falls (masked logits are
    lowered, not removed, so an off-mask label would still get a finite gradient)."""
    import dataclasses

    cfg, env, params, _ = _ppo_setup()
    net_cfg = dataclasses.replace(cfg.network, anchor_mask=True)
    net = make_network(net_cfg, cfg.env, env.observation_shape(params), jax.random.PRNGKey(0))
    pairs = il.expert_pairs(env, params, np.arange(4)).filtered()
    init, chunk = il.make_il(dataclasses.replace(cfg.il, steps=60, steps_per_chunk=30, batch_size=64), net, pairs)
    state = init(jax.random.PRNGKey(0), net.params)
    state, m1 = jax.jit(chunk)(state)
    state, m2 = jax.jit(chunk)(state)
    assert np.isfinite(np.asarray(m2["il_loss"])).all()
    assert float(jnp.mean(m2["il_loss"])) < float(jnp.mean(m1["il_loss"]))
