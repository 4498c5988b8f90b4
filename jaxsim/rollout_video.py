"""Record one closed-loop episode as an animation (GIF, or MP4 with imageio-ffmpeg).

    summary = record_episode(env, params, policy_fn, key, scenario_idx=3, path="ep.gif")

Each frame is `jaxsim.viz.draw_scene` of the simulated state (ego, traffic as the env
sees it, the env's reference route, DAA adversary in red), with the policy's own BEV
observation drawn beside it when `EnvConfig.obs == "bev"`. The env step is jitted; the
loop runs on the host because drawing is numpy/PIL.
"""

from __future__ import annotations

import os
import warnings
import weakref
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim import metrics as met
from jaxsim.actions import normalized_to_controls

# BEV channel colours (drivable, lanes, agents, route, ego), painted in this order
BEV_COLORS = np.array([[92, 94, 100], [205, 205, 190], [70, 130, 235], [60, 200, 110], [245, 145, 30]], np.uint8)
EVENT_NAMES = {met.NO_EVENT: "none", met.DYNAMIC: "dynamic_collision", met.STATIC: "static_collision",
               met.POSITION: "position_deviation", met.HEADING: "heading_deviation"}  # fmt: skip


_JITTED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _jitted(env):
    """(reset_to, step) jitted once per env object, so repeated recordings reuse them."""
    if env not in _JITTED:
        _JITTED[env] = (jax.jit(env.reset_to), jax.jit(env.step))
    return _JITTED[env]


def bev_to_rgb(obs: np.ndarray, size_px: int | None = None) -> np.ndarray:
    """(S, S, 5) BEV observation -> (size_px, size_px, 3) uint8 picture (nearest upscaling)."""
    obs = np.asarray(obs)
    img = np.full(obs.shape[:2] + (3,), 232, np.uint8)
    for c in range(min(obs.shape[-1], len(BEV_COLORS))):
        img[obs[..., c] > 0.5] = BEV_COLORS[c]
    if size_px is not None and size_px != img.shape[0]:
        rep = max(1, int(round(size_px / img.shape[0])))
        img = np.repeat(np.repeat(img, rep, axis=0), rep, axis=1)
    return img


def render_state(env, params, state, size_px: int = 384, view=None, obs=None, scenario=None) -> np.ndarray:
    """(size_px, size_px [+ size_px if obs is a BEV], 3) uint8 picture of one env state.

    scenario: `params.bank[state.scenario_idx]`, if the caller already has it.
    """
    from jaxsim import viz

    if scenario is None:
        scenario = params.bank[int(state.scenario_idx)]
    agents, valid, _ = env.current_agents(state, params)
    t = min(int(state.t), scenario.num_steps - 1)
    route = np.asarray(state.route)[: int(state.route_len), :2]
    highlight = None
    adv = getattr(state, "adv", None)  # DAA adversary, when the env carries one
    if adv is not None and hasattr(adv, "slot"):
        highlight = (np.arange(np.asarray(valid).shape[0]) == int(adv.slot)) & bool(np.asarray(adv.active))
    frame = viz.draw_scene(
        scenario, t, ego_state=np.asarray(state.ego), agents=np.asarray(agents), agent_valid=np.asarray(valid),
        route=route, size_px=size_px, view=view, highlight=highlight,
    )  # fmt: skip
    if obs is not None and np.ndim(obs) == 3:
        side = bev_to_rgb(obs, size_px)
        pad = np.full((size_px, size_px, 3), 232, np.uint8)
        pad[: min(size_px, side.shape[0]), : min(size_px, side.shape[1])] = side[:size_px, :size_px]
        frame = np.concatenate([frame, pad], axis=1)
    return frame


def _episode_view(scenario, route: np.ndarray, margin: float = 15.0):
    """Fixed square window around the logged ego path and the reference route."""
    from jaxsim import viz

    cx, cy, he = viz.default_view(scenario, margin)
    lo = np.minimum(route.min(0), [cx - he + margin, cy - he + margin])
    hi = np.maximum(route.max(0), [cx + he - margin, cy + he - margin])
    c = 0.5 * (lo + hi)
    return float(c[0]), float(c[1]), float(max(0.5 * np.max(hi - lo) + margin, 30.0))


def record_episode(
    env,
    params,
    policy_fn: Callable,
    key: jax.Array,
    scenario_idx: int,
    path: str,
    max_steps: int | None = None,
    size_px: int = 384,
    fps: float | None = None,
    normalized_actions: bool = False,
    jit_policy: bool = True,
) -> dict:
    """Run one episode of `env` (a single, unbatched DrivingEnv) and write it to `path`.

    Args:
      policy_fn: (obs, key) -> action, or -> (action, extras) as brax's policies return.
        Actions are in the env's action space, or in [-1, 1]^2 if `normalized_actions`
        (continuous envs; mapped by `jaxsim.actions.normalized_to_controls`).
      key: PRNG key for the reset and the policy.
      scenario_idx: bank index to play.
      path: ".gif" or ".mp4"; an .mp4 is written as a .gif next to it when
        imageio-ffmpeg is missing (the returned `path` says which).
      max_steps: stop after this many env steps (default: until the episode ends).
      fps: frames per second (default: real time, one frame per env step).
    Returns: dict with path, frames, steps, return, event and the episode's RAD metrics.
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in (".gif", ".mp4"):
        raise ValueError(f"path must end in .gif or .mp4, got {path!r}")
    if ext == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            path = os.path.splitext(os.fspath(path))[0] + ".gif"
            warnings.warn(f"imageio-ffmpeg is not installed; writing {path} instead of an mp4", stacklevel=2)

    def act(obs, k):
        out = policy_fn(obs, k)
        action = out[0] if isinstance(out, tuple) else out
        if normalized_actions:
            action = normalized_to_controls(jnp.asarray(action, jnp.float32), params.dynamics)
        return action

    act = jax.jit(act) if jit_policy else act
    reset_to, step = _jitted(env)
    key, k_reset = jax.random.split(key)
    obs, state = reset_to(k_reset, params, scenario_idx)
    scenario = params.bank[int(scenario_idx)]
    view = _episode_view(scenario, np.asarray(state.route)[: int(state.route_len), :2])
    bev_obs = env.config.obs == "bev"
    frames = [render_state(env, params, state, size_px, view, obs if bev_obs else None, scenario)]
    total, steps, done = 0.0, 0, False
    while not done and (max_steps is None or steps < max_steps):
        key, k_act, k_step = jax.random.split(key, 3)
        obs, state, reward, terminated, truncated, _ = step(k_step, state, act(obs, k_act), params)
        total, steps = total + float(reward), steps + 1
        done = bool(terminated) or bool(truncated)
        frames.append(render_state(env, params, state, size_px, view, obs if bev_obs else None, scenario))

    from jaxsim import viz

    if fps is None:
        fps = 1.0 / (float(params.bank.dt[int(scenario_idx)]) * env.config.substeps)
    viz.save_animation(frames, path, fps=fps)
    episode = {k: float(v) for k, v in met.finalize(state.metrics).items()}
    return {**episode, "path": os.fspath(path), "frames": len(frames), "steps": steps, "return": total,
            "event": EVENT_NAMES[int(state.metrics.event)]}  # fmt: skip
