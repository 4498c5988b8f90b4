"""`DrivingEnv` as a brax `Env`, so brax's trainers (`brax.training.agents.ppo.train`)
and wrappers (`brax.envs.wrappers.training.wrap`: Vmap, Episode, AutoReset) run on it.

    env = BraxDrivingEnv(DrivingEnv(EnvConfig(action_space="continuous")), params)
    make_policy, policy_params, _ = ppo.train(env, num_timesteps=..., episode_length=80, ...)

Differences from brax's physics envs, and how they are bridged:
  - brax's `reset(rng)` takes no params: the adapter holds the `EnvParams` (bank
    included) and closes over them, as brax envs hold their `sys`.
  - Actions are [-1, 1]^2, mapped to [accel, steer] by
    `jaxsim.actions.normalized_to_controls` (accel scaled by max_accel / max_decel).
  - Our `EnvState` is the brax `pipeline_state`, so brax's AutoResetWrapper restores
    it together with the first observation (brax resets to the episode's initial
    state; the scenario is re-drawn only on an explicit `reset`).
  - `done` = terminated | truncated; `info['time_out']` = truncated (end of the log),
    which brax's PPO bootstraps when `bootstrap_on_timeout=True`.
  - Observations are flattened to a vector (brax's MLPs want (D,)) unless
    `flatten_obs=False`.
  - `metrics` hold per-step values (reward parts, event flags, metres of progress)
    that brax's EpisodeWrapper sums into per-episode totals.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State

from jaxsim.actions import normalized_to_controls
from jaxsim.adapters import brax_compat
from jaxsim.env import DrivingEnv, EnvParams

brax_compat.install()  # brax 0.14 PPO on jax >= 0.10

METRIC_KEYS = (
    "reward_lat", "reward_lon", "progress",
    "dynamic_collision", "static_collision", "position_deviation", "heading_deviation",
)  # fmt: skip


class BraxDrivingEnv(Env):
    """brax `Env` over one `DrivingEnv` with fixed `EnvParams` (see module docstring)."""

    def __init__(self, env: DrivingEnv, params: EnvParams, flatten_obs: bool = True):
        if env.config.action_space != "continuous":
            raise ValueError(
                f"BraxDrivingEnv needs EnvConfig.action_space='continuous', got {env.config.action_space!r}; "
                "allowed values: 'continuous'"
            )
        self.env = env
        self.params = params
        self.flatten_obs = flatten_obs

    def _obs(self, obs: jnp.ndarray) -> jnp.ndarray:
        return obs.reshape(-1) if self.flatten_obs else obs

    def reset(self, rng: jax.Array) -> State:
        key_reset, key_next = jax.random.split(rng)
        obs, es = self.env.reset(key_reset, self.params)
        zero = jnp.zeros((), jnp.float32)
        return State(
            pipeline_state=es,
            obs=self._obs(obs),
            reward=zero,
            done=zero,
            metrics={k: zero for k in METRIC_KEYS},
            info={"rng": key_next, "time_out": zero, "terminated": zero},
        )

    def step(self, state: State, action: jax.Array) -> State:
        key, key_next = jax.random.split(state.info["rng"])
        controls = normalized_to_controls(jnp.asarray(action, jnp.float32), self.params.dynamics)
        progress0 = state.pipeline_state.progress
        obs, es, reward, terminated, truncated, info = self.env.step(key, state.pipeline_state, controls, self.params)
        ev = info["events"]
        f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
        step_metrics = {
            "reward_lat": f32(info["reward_lat"]),
            "reward_lon": f32(info["reward_lon"]),
            "progress": es.progress - progress0,
            "dynamic_collision": f32(ev.dynamic_collision),
            "static_collision": f32(ev.static_collision),
            "position_deviation": f32(ev.position_deviation),
            "heading_deviation": f32(ev.heading_deviation),
        }
        # keep keys that wrappers added (EvalWrapper's 'reward'): scan carries need them
        metrics = dict(state.metrics, **step_metrics)
        info = dict(state.info, rng=key_next, time_out=f32(truncated), terminated=f32(terminated))
        return state.replace(
            pipeline_state=es,
            obs=self._obs(obs),
            reward=f32(reward),
            done=f32(terminated | truncated),
            metrics=metrics,
            info=info,
        )

    @property
    def observation_size(self) -> int | tuple[int, ...]:
        shape = self.env.observation_shape(self.params)
        if self.flatten_obs:
            size = 1
            for s in shape:
                size *= s
            return size
        return shape

    @property
    def action_size(self) -> int:
        return 2

    @property
    def backend(self) -> str:
        return "jaxsim"

    @property
    def dt(self) -> jnp.ndarray:
        """Seconds per env step (of the first scenario; banks share one dt in practice)."""
        return self.params.bank.dt[0] * self.env.config.substeps
