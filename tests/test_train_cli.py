import json
import os

import pytest
from learner_fixtures import TINY, lead_car_bank

from agents.cli import main
from agents.train_config import load_config


def test_default_config_file_loads_and_overrides_apply():
    cfg = load_config("configs/default.yaml", ["ppo.lr=1e-4", "seeds=2", "daa.behaviours=[hard_brake]"])
    assert cfg.ppo.lr == 1e-4 and cfg.seeds == 2 and cfg.daa.behaviours == ("hard_brake",)
    assert cfg.env.substeps == 5  # a partial `env:` section keeps the other defaults


@pytest.mark.parametrize(
    "override, needle",
    [
        ("ppo.clip_lat=2", "'ppo.clip_lat'"),
        ("ppo.lrr=1", "'ppo.lrr'"),
        ("network.encoder=transformer", "'network.encoder'"),
        ("il.loss=mse", "'il.loss'"),
        ("ppo.num_minibatches=7", "'ppo.num_minibatches'"),
    ],
)
def test_cli_rejects_bad_keys_naming_them(override, needle, capsys, tmp_path):
    rc = main(["train", "--set", override, "--out", str(tmp_path / "run")])
    assert rc == 2
    assert needle in capsys.readouterr().err


def test_cli_refuses_to_resume_a_different_config(tmp_path, capsys):
    from agents.commands.train import prepare_out

    out = str(tmp_path / "run")
    prepare_out(load_config(None, ["ppo.lr=1e-4"]), out, fresh=False)
    with pytest.raises(ValueError, match="ppo.lr"):
        prepare_out(load_config(None, ["ppo.lr=2e-4"]), out, fresh=False)
    prepare_out(load_config(None, ["ppo.lr=2e-4"]), out, fresh=True)  # --fresh starts over


@pytest.mark.slow
def test_tiny_experiment_end_to_end_and_eval_matches_env_events(tmp_path):
    """IL -> PPO -> eval on a hand-built set; eval metrics equal the env's own event counts."""
    import jax
    import numpy as np

    from agents.checkpoint import load_policy
    from agents.eval_learned import rollout_learned
    from agents.trainer import run_training
    from jaxsim.env import DrivingEnv

    cfg = load_config(None, TINY + ["il.steps=50", "il.steps_per_chunk=50", "ppo.num_envs=8", "ppo.num_steps=4",
                                    "ppo.num_updates=2", "ppo.updates_per_chunk=1", "ppo.num_minibatches=2",
                                    "ppo.ttc_weight=0.5", "ppo.il_coef=0.1", "ppo.il_heads=lat",
                                    "scenarios.num_validation=2"])  # fmt: skip
    bank = lead_car_bank()
    res = run_training(cfg, str(tmp_path), banks=(bank, bank))
    assert set(res["eval"]["log-replay"]) == {"IL", "RL"}
    assert res["validation_eval"]["log-replay"]["RL"]["mean"]["Episodes"] == 2
    assert "### Validation, log-replay" in open(os.path.join(tmp_path, "results.md")).read()
    saved = json.load(open(os.path.join(tmp_path, "results.json")))
    assert saved["eval"]["log-replay"]["RL"]["mean"]["Episodes"] == 4
    # recount events by stepping the env by hand with the exported RL policy
    net, params, _, cfg2 = load_policy(str(tmp_path / "policy_rl"))
    env = DrivingEnv(cfg2.env)
    env_p = env.default_params(bank)
    from agents.adversaries import with_daa

    eps = rollout_learned(env, net, params, with_daa(env_p, 4, (), None), np.arange(4), jax.random.PRNGKey(0))
    from agents import policies as pol

    counts = np.zeros(5)
    for i in range(4):
        obs, st = env.reset_to(jax.random.PRNGKey(0), env_p, i)
        for _ in range(40):
            a = pol.mode(net.apply(jax.tree.map(lambda x: x[0], params), obs))
            obs, st, _, term, trunc, info = env.step(jax.random.PRNGKey(0), st, a, env_p)
            if term or trunc:
                break
        ev = info["events"]
        code = (
            1
            if ev.dynamic_collision
            else 2
            if ev.static_collision
            else 3
            if ev.position_deviation
            else 4
            if ev.heading_deviation
            else 0
        )
        counts[code] += 1
    np.testing.assert_array_equal(
        [eps["dynamic_collision"][0].sum(), eps["static_collision"][0].sum(), eps["position_deviation"][0].sum(),
         eps["heading_deviation"][0].sum()], counts[1:])  # fmt: skip
