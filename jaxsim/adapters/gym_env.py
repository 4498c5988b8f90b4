"""`DrivingEnv` behind Gymnasium's interfaces: numpy in, numpy out, jitted JAX inside.

  DrivingVectorEnv(env, params, num_envs)  a `gymnasium.vector.VectorEnv`; all envs
      step in one jitted, vmapped call. Autoreset mode SAME_STEP (declared in
      `metadata["autoreset_mode"]`): when an env finishes, `step` already returns the
      first observation of its next episode; the last one is in `info["final_obs"]`
      and the episode's RAD metrics in `info["final_info"]`, both masked by
      `info["_final_obs"]` / `info["_final_info"]` (gymnasium's `_key` convention).
  DrivingGymEnv(env, params)  a single `gymnasium.Env` (no autoreset), passes
      `gymnasium.utils.env_checker.check_env`.

Spaces: discrete envs take RAD anchor indices, `MultiDiscrete([61, 61])`; continuous
envs take `Box(-1, 1, (2,))`, mapped to [accel, steer] by
`jaxsim.actions.normalized_to_controls`. Observations are float32 `Box`es of
`DrivingEnv.observation_shape` ([0, 1] for "bev"). Seeding: `reset(seed=...)` seeds the
env's generator, from which every JAX key (and the scenario draw) is derived;
`reset(options={"scenario_idx": i})` starts on given scenarios.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import VectorEnv

try:  # gymnasium >= 1.1 names the autoreset modes; 1.0 has no SAME_STEP wrappers to match
    from gymnasium.vector import AutoresetMode

    SAME_STEP = AutoresetMode.SAME_STEP
except ImportError:  # pragma: no cover
    SAME_STEP = "SameStep"
from gymnasium.vector.utils import batch_space

from jaxsim import metrics as met
from jaxsim.actions import normalized_to_controls
from jaxsim.env import DrivingEnv, EnvParams
from jaxsim.wrappers import AutoResetWrapper, VmapWrapper


def make_spaces(env: DrivingEnv, params: EnvParams) -> tuple[gym.Space, gym.Space]:
    """(single observation space, single action space) of one env."""
    shape = env.observation_shape(params)
    if env.config.obs == "bev":
        obs_space = gym.spaces.Box(0.0, 1.0, shape, np.float32)
    else:
        obs_space = gym.spaces.Box(-np.inf, np.inf, shape, np.float32)
    if env.config.action_space == "discrete":
        spec = env.discrete_spec
        act_space = gym.spaces.MultiDiscrete([spec.num_lat, spec.num_lon])
    else:
        act_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    return obs_space, act_space


def _env_action(env: DrivingEnv, action, params: EnvParams):
    """Gym action -> what `DrivingEnv.step` takes (indices, or controls from [-1, 1])."""
    if env.config.action_space == "discrete":
        return jnp.asarray(action, jnp.int32)
    return normalized_to_controls(jnp.asarray(action, jnp.float32), params.dynamics)


def _step_info(info: dict, state) -> dict:
    """Scalars per env for the gym `info` dict."""
    return {
        "reward_lat": info["reward_lat"],
        "reward_lon": info["reward_lon"],
        "event": met.event_code(info["events"]),
        "route_distance": info["events"].route_distance,
        "route_completion": info["metrics"].route_completion,
        "scenario_idx": state.scenario_idx,
    }


def _seed_key(rng: np.random.Generator) -> jax.Array:
    return jax.random.PRNGKey(int(rng.integers(0, 2**31 - 1)))


class DrivingVectorEnv(VectorEnv):
    """Batched Gymnasium env over `num_envs` driving envs (see module docstring)."""

    metadata = {"autoreset_mode": SAME_STEP, "render_modes": []}

    def __init__(self, env: DrivingEnv, params: EnvParams, num_envs: int):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.env, self.params, self.num_envs = env, params, num_envs
        self.single_observation_space, self.single_action_space = make_spaces(env, params)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._venv = VmapWrapper(AutoResetWrapper(env), num_envs)
        self._np_random = np.random.default_rng()
        self._state = None

        def step(key, state, action, params):
            act = _env_action(env, action, params)  # elementwise: works on (num_envs, 2)
            obs, state, reward, terminated, truncated, info = self._venv.step(key, state, act, params)
            extra = jax.vmap(_step_info)(info, state)
            return obs, state, reward, terminated, truncated, info["final_obs"], info["done"], info["episode"], extra

        self._step = jax.jit(step)
        self._reset = jax.jit(self._venv.reset)
        self._reset_to = jax.jit(self._venv.reset_to)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self._np_random = np.random.default_rng(seed)
        key = _seed_key(self._np_random)
        idx = (options or {}).get("scenario_idx")
        if idx is None:
            obs, self._state = self._reset(key, self.params)
        else:
            idx = np.broadcast_to(np.asarray(idx, np.int32), (self.num_envs,))
            obs, self._state = self._reset_to(key, self.params, jnp.asarray(idx))
        return np.asarray(obs), {"scenario_idx": np.asarray(self._state.scenario_idx)}

    def step(self, actions):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        key = _seed_key(self._np_random)
        out = self._step(key, self._state, jnp.asarray(actions), self.params)
        obs, self._state, reward, terminated, truncated, final_obs, done, episode, extra = out
        done = np.asarray(done)
        infos = {k: np.asarray(v) for k, v in extra.items()}
        infos.update({f"_{k}": np.ones(self.num_envs, bool) for k in extra})
        if done.any():
            infos["final_obs"], infos["_final_obs"] = np.asarray(final_obs), done
            infos["final_info"] = {k: np.asarray(v) for k, v in episode.items()}
            infos["final_info"].update({f"_{k}": done for k in episode})
            infos["_final_info"] = done
        return (np.asarray(obs), np.asarray(reward, np.float32), np.asarray(terminated, bool),
                np.asarray(truncated, bool), infos)  # fmt: skip


class DrivingGymEnv(gym.Env):
    """One driving env as a `gymnasium.Env` (see module docstring).

    render_mode "rgb_array" draws the scene with `jaxsim.viz.draw_scene`.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, env: DrivingEnv, params: EnvParams, render_mode: str | None = None, render_size: int = 256):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode is {render_mode!r}; allowed values: None, 'rgb_array'")
        self.env, self.params, self.render_mode, self.render_size = env, params, render_mode, render_size
        self.observation_space, self.action_space = make_spaces(env, params)
        self._reset = jax.jit(env.reset)
        self._reset_to = jax.jit(env.reset_to)

        def step(key, state, action, params):
            obs, state, reward, terminated, truncated, info = env.step(
                key, state, _env_action(env, action, params), params
            )
            return obs, state, reward, terminated, truncated, _step_info(info, state), met.finalize(state.metrics)

        self._step = jax.jit(step)
        self._state = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        key = _seed_key(self.np_random)
        idx = (options or {}).get("scenario_idx")
        if idx is None:
            obs, self._state = self._reset(key, self.params)
        else:
            obs, self._state = self._reset_to(key, self.params, int(idx))
        return np.asarray(obs, np.float32), {"scenario_idx": int(self._state.scenario_idx)}

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        key = _seed_key(self.np_random)
        obs, self._state, reward, terminated, truncated, extra, episode = self._step(
            key, self._state, jnp.asarray(action), self.params
        )
        info = {k: np.asarray(v).item() for k, v in extra.items()}
        terminated, truncated = bool(terminated), bool(truncated)
        if terminated or truncated:
            info["episode_metrics"] = {k: float(v) for k, v in episode.items()}
        return np.asarray(obs, np.float32), float(reward), terminated, truncated, info

    def render(self):
        if self.render_mode != "rgb_array" or self._state is None:
            return None
        from jaxsim.rollout_video import render_state

        return render_state(self.env, self.params, self._state, size_px=self.render_size)
