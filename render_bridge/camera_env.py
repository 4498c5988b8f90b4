"""Camera-observation env: steps the jitted simulator, renders every env's cameras.

    env = VmapWrapper(AutoResetWrapper(DrivingEnv(cfg)), num_envs)
    cam_env = CameraObsEnv(env, Renderer(scene_bank, RigConfig("front", 128, 128)))
    obs, state = cam_env.reset(key, params)          # obs: (B, C, H, W, 3) uint8 jax array
    obs, state, reward, terminated, truncated, info = cam_env.step(key, state, action, params)

The simulator step, camera poses and actor poses run in one `jax.jit`; the render runs
in torch between jitted calls (DLPack conversion cannot happen inside jit), so a rollout
is a Python loop. `obs="dict"` returns {"image": images, "state": the env's own
observation}. `info["final_obs"]` keeps the env's own (vector / BEV) final observation
and, with an `AutoResetWrapper` in the stack, `info["final_image"]` (B, C, H, W, 3) the
rendered final state of every episode that ended this step (the new episode's image
elsewhere); only the finished envs are rendered a second time.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsim.config_utils import check_choice
from jaxsim.wrappers import params_axes
from render_bridge import cameras


def _keep_final_states(env) -> bool:
    """Ask every auto-reset wrapper in the stack to keep the ended episode's state (so its
    final image can be rendered); True if there is one."""
    from jaxsim.wrappers import AutoResetWrapper

    found = False
    while env is not None:
        if isinstance(env, AutoResetWrapper):
            env.keep_final_state = found = True
        env = env.__dict__.get("env")
    return found


class CameraObsEnv:
    """Wraps a batched env (a `VmapWrapper`); see the module docstring."""

    def __init__(self, env, renderer, obs: str = "image", draw_ego: bool = False):
        check_choice("obs", obs, ("image", "dict"))
        if not hasattr(env, "num_envs"):
            raise ValueError("CameraObsEnv wraps a batched env: VmapWrapper(AutoResetWrapper(env), num_envs)")
        self.env, self.renderer, self.obs_mode, self.draw_ego = env, renderer, obs, draw_ego
        self.num_envs = env.num_envs
        self.render_final = _keep_final_states(env)
        self._reset = jax.jit(self._reset_impl)
        self._step = jax.jit(self._step_impl)
        self._reset_to = jax.jit(self._reset_to_impl)

    # ---- the wrapped env's queries, forwarded explicitly (jaxsim.base's contract) ----
    @property
    def batched_params(self) -> bool:
        return getattr(self.env, "batched_params", False)

    @property
    def config(self):
        return self.env.config

    @property
    def unwrapped(self):
        return self.env.unwrapped

    @property
    def action_shape(self):
        return self.env.action_shape

    def default_params(self, bank):
        return self.env.default_params(bank)

    # ---- JAX side (jitted): simulator + where every camera and car is ----
    def innermost_state(self, state):
        """The simulator's own state inside the stack's (e.g. a `RestartState`'s running episode)."""
        env = self.env
        while env is not None:
            if hasattr(type(env), "inner"):  # auto-reset wrappers know how their state holds the inner one
                state = env.inner(state)
            env = env.__dict__.get("env")
        return state

    def render_inputs(self, state, params, innermost: bool = False):
        """(scenario_idx (B,), actor poses (B, 1 + A, 4), viewmats (B, C, 4, 4)) for a batched
        state of the wrapped stack (or, `innermost`, of the simulator itself)."""
        base = self.env.unwrapped
        axes = params_axes(params, self.batched_params)
        rig, draw_ego = self.renderer.rig, self.draw_ego
        state = state if innermost else self.innermost_state(state)

        def one(s, p):
            agents, valid, _ = base.current_agents(s, p)
            return (
                s.scenario_idx,
                cameras.actor_poses(s.ego, agents, valid, draw_ego),
                cameras.view_matrices(s.ego, rig),
            )

        return jax.vmap(one, in_axes=(0, axes))(state, params)

    def _reset_impl(self, key, params):
        obs, state = self.env.reset(key, params)
        return obs, state, self.render_inputs(state, params)

    def _reset_to_impl(self, key, params, scenario_idx):
        obs, state = self.env.reset_to(key, params, scenario_idx)
        return obs, state, self.render_inputs(state, params)

    def _step_impl(self, key, state, action, params):
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        final = None
        if self.render_final:
            final = self.render_inputs(info.pop("final_state"), params, innermost=True)
        return (obs, state, reward, terminated, truncated, info), self.render_inputs(state, params), final

    # ---- torch side: images ----
    def _observe(self, obs, inputs):
        images = self.renderer.render(*inputs)
        return {"image": images, "state": obs} if self.obs_mode == "dict" else images

    def reset(self, key, params):
        obs, state, inputs = self._reset(key, params)
        return self._observe(obs, inputs), state

    def reset_to(self, key, params, scenario_idx):
        """Reset env i on scenario scenario_idx[i] (B,) following its expert log."""
        obs, state, inputs = self._reset_to(key, params, jnp.asarray(scenario_idx, jnp.int32))
        return self._observe(obs, inputs), state

    def step(self, key, state, action, params):
        (obs, state, reward, terminated, truncated, info), inputs, final = self._step(
            key, state, jnp.asarray(action), params
        )
        out = self._observe(obs, inputs)
        if final is not None:
            images = out["image"] if self.obs_mode == "dict" else out
            sub = self.renderer.render_rows(*final, info["done"])
            info["final_image"] = images if sub is None else images.at[sub[0]].set(sub[1])
        return out, state, reward, terminated, truncated, info

    def observation_shape(self) -> tuple:
        return (self.num_envs,) + self.renderer.image_shape
