"""One evaluation path: `reconrl eval --checkpoint DIR --daa all` reports the numbers
`reconrl train` puts in its table for the same checkpoint and seed (regression: the
checkpoint evaluation once copied the suite with other adversary keys), and every
evaluator runs the same frozen-after-done rollout (`jaxsim.rollout`)."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from learner_fixtures import lead_car_bank, tiny_config

from agents import adversaries


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A run directory with a two-seed RL policy (untrained: equality needs no learning)."""
    from agents.checkpoint import save_policy
    from agents.networks import init_params
    from agents.trainer import env_params_for, policy_meta
    from jaxsim.env import DrivingEnv

    cfg = tiny_config("daa.enabled=true", "seeds=2")
    out = str(tmp_path_factory.mktemp("run"))
    bank = lead_car_bank(T=31)
    env = DrivingEnv(cfg.env)
    obs_shape = env.observation_shape(env_params_for(env, bank, cfg))
    params = init_params(cfg.network, cfg.env, obs_shape, jax.random.split(jax.random.PRNGKey(5), 2))
    save_policy(os.path.join(out, "policy_rl"), params, policy_meta(cfg, obs_shape, "rl"))
    return cfg, out, bank, env, params


@pytest.mark.skipif(not adversaries.daa_available(), reason="needs jaxsim.daa")
@pytest.mark.slow
def test_eval_checkpoint_daa_all_equals_the_training_table(checkpoint, tmp_path):
    from agents.cli import main
    from agents.networks import make_network
    from agents.trainer import env_params_for, evaluate_policies
    from jaxsim.bank_io import save_bank

    cfg, out, bank, env, params = checkpoint
    heldout = env_params_for(env, bank, cfg)
    network = make_network(cfg.network, cfg.env, env.observation_shape(heldout), jax.random.PRNGKey(cfg.seed))
    table = evaluate_policies(cfg, env, heldout, network, {"RL": params})  # what `reconrl train` writes
    assert set(table) == {"log-replay", *cfg.daa.behaviours, "daa-all"}
    path = str(tmp_path / "bank.npz")
    save_bank(path, bank)
    js = str(tmp_path / "eval.json")
    assert main(["eval", "--checkpoint", out, "--daa", "all", "--bank", path, "--eval-seed", str(cfg.eval.seed),
                 "--json", js]) == 0  # fmt: skip
    rows = json.load(open(js))["rows"]
    assert set(rows) == {f"RL [{cond}]" for cond in table}
    for cond, by_policy in table.items():
        want, got = by_policy["RL"]["mean"], rows[f"RL [{cond}]"]
        assert got == pytest.approx(want, abs=1e-9), cond
    # the adversaries differ between behaviours (a suite that reused one key would not)
    assert len({json.dumps(table[b]["RL"]["mean"], sort_keys=True) for b in cfg.daa.behaviours}) > 1


def test_rollout_freezes_finished_episodes_and_counts_own_steps():
    from jaxsim.env import DrivingEnv, EnvConfig
    from jaxsim.rollout import episode_steps, unroll
    from jaxsim.wrappers import VmapWrapper

    env = DrivingEnv(EnvConfig(action_space="continuous", obs="vector", max_steps=4, num_obs_agents=2,
                               num_lane_points=4, num_route_points=4))  # fmt: skip
    params = env.default_params(lead_car_bank(T=21))
    venv = VmapWrapper(env, 4)
    obs, state = venv.reset_to(jax.random.PRNGKey(0), params, jnp.arange(4))
    policy = lambda key, obs, state: jnp.zeros((4, 2))  # noqa: E731
    n = episode_steps(env, params)
    assert n == 20
    final, rec = jax.jit(lambda o, s: unroll(venv, params, policy, jax.random.PRNGKey(1), o, s, n,
                                              lambda st: (st.done, st.next_state.steps)))(obs, state)  # fmt: skip
    done, steps = (np.asarray(x) for x in rec)
    assert np.all(np.asarray(final.done))
    # each episode counts exactly its own steps: frozen after its end, never reset
    ends = np.argmax(done, axis=0)  # first step flagged as after the end
    np.testing.assert_array_equal(np.asarray(final.state.steps), ends)
    np.testing.assert_array_equal(steps[-1], ends)
    assert np.all(ends <= 4) and np.all(ends >= 1)


def test_video_trace_follows_the_evaluated_episode(checkpoint):
    """Videos run the same rollout as evaluation: same length, same ending event."""
    from agents.eval_learned import rollout_learned
    from agents.networks import make_network
    from agents.video import episode_trace
    from jaxsim import metrics as met

    cfg, _, bank, env, params = checkpoint
    env_p = env.default_params(bank)
    network = make_network(cfg.network, cfg.env, env.observation_shape(env_p), jax.random.PRNGKey(0))
    eps = rollout_learned(env, network, params, adversaries.with_daa(env_p, 4, (), None),
                          np.arange(4), jax.random.PRNGKey(0))  # fmt: skip
    p0 = jax.tree.map(lambda x: x[0], params)
    for idx in (0, 3):
        trace = episode_trace(env, env_p, network, p0, idx, jax.random.PRNGKey(0))
        assert len(trace["ego"]) - 1 == int(eps["steps"][0, idx])
        np.testing.assert_allclose(trace["ego"][0], np.asarray(bank.ego_traj[idx, 0]), atol=1e-6)
        assert trace["event"][0] == met.NO_EVENT
        flags = ("dynamic_collision", "static_collision", "position_deviation", "heading_deviation")
        got = [float(eps[f][0, idx]) for f in flags]
        code = int(trace["event"][-1])
        assert got == [float(code == k + 1) for k in range(4)], (idx, code, got)
