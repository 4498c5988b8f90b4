"""Camera observations for learners: what a camera policy sees, and the renderer behind it.

A camera policy's observation is a dict (leading batch dims `...`):
    image  (..., F * C, H, W, 3) uint8  the rig's C cameras, rendered by render_bridge
                                     (3DGS), at the last F env steps (`render.frames`,
                                     oldest first; one frame shows where the car ahead
                                     is, two also how fast it closes)
    ego    (..., E) float32          the ego-state block of the vector observation
                                     (speed, controls, route offset, heading error,
                                     accelerations) and the route points ahead: RAD's
                                     planner also gets ego state and navigation.
Nothing else: other agents', lanes' and the road's privileged geometry never reach the
policy. The full vector observation ("privileged", (..., D)) travels beside it only as
the target of the perception head's auxiliary loss.

    camera = Camera.build(cfg.render, env_cfg, bank)          # renderer + rig
    images = camera.render(inputs)                            # inputs from `render_inputs`
    stack = stack_frames(images, frames, prev=stack, restart=done)   # (..., F * C, H, W, 3)
    obs = policy_obs(stack, vec_obs, env_cfg, ego_state=True)
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from jaxsim.observations import EGO_DIM, ROUTE_DIM, vector_layout


def ego_state(vec_obs: jnp.ndarray, env_cfg) -> jnp.ndarray:
    """(..., 7 + 2R) ego and route blocks of vector observations (..., D)."""
    lay = vector_layout(env_cfg)
    (a, b, _), (c, d, _) = lay["ego"], lay["route"]
    return jnp.concatenate([vec_obs[..., a:b], vec_obs[..., c:d]], axis=-1)


def ego_state_dim(env_cfg) -> int:
    return EGO_DIM + env_cfg.num_route_points * ROUTE_DIM


def policy_obs(images, vec_obs, env_cfg, ego: bool = True) -> dict:
    """The camera policy's observation from rendered images and the env's vector observation."""
    out = {"image": images}
    if ego:
        out["ego"] = ego_state(vec_obs, env_cfg)
    return out


def stack_frames(images, frames: int, prev=None, restart=None):
    """The policy's image observation (..., frames * C, H, W, 3), oldest frame first.

    images (..., C, H, W, 3): the newest frame. prev: the previous stacked observation,
    or None at the start of every episode (the newest frame then fills every slot, as
    gym's FrameStack does). restart (...) bool: rows whose episode starts with `images`
    (an auto-reset) restart their stack. frames == 1 returns `images` itself."""
    return images if frames == 1 else _stack(images, frames, prev, restart)


@functools.partial(jax.jit, static_argnames="frames")
def _stack(images, frames, prev, restart):
    fresh = jnp.concatenate([images] * frames, axis=-4)
    if prev is None:
        return fresh
    c = images.shape[-4]
    pushed = jnp.concatenate([prev[..., c:, :, :, :], images], axis=-4)
    if restart is None:
        return pushed
    return jnp.where(restart.reshape(restart.shape + (1,) * 4), fresh, pushed)


def obs_shape(render_cfg, env_cfg, vec_dim: int, perception: bool) -> dict:
    """Per-env observation shapes for `agents.networks.make_network` (camera encoder)."""
    from render_bridge.cameras import RigConfig

    rig = RigConfig(render_cfg.rig, render_cfg.width, render_cfg.height)
    shape = {"image": (render_cfg.frames * rig.num_cameras, rig.height, rig.width, 3)}
    if render_cfg.ego_state:
        shape["ego"] = (ego_state_dim(env_cfg),)
    if perception:
        shape["privileged"] = (vec_dim,)
    return shape


# ---------------------------------------------------------------- JAX side: where to render
def render_inputs(env, state, params, rig, draw_ego: bool = False):
    """(scenario_idx (), actor poses (1 + A, 4), viewmats (C, 4, 4)) for ONE env's state
    (DAA adversaries included); vmap it over envs."""
    from render_bridge import cameras

    base = getattr(env, "unwrapped", env)
    agents, valid, _ = base.current_agents(state, params)
    poses = cameras.actor_poses(state.ego, agents, valid, draw_ego)
    return state.scenario_idx, poses, cameras.view_matrices(state.ego, rig)


def logged_render_inputs(bank, rig, scenario_idx, t, ego):
    """Render inputs for ONE ego pose `ego` (4,) at log step t of a scenario, the other
    agents as logged (IL pairs along the expert log and its cousins); vmap over rows."""
    from render_bridge import cameras

    t = jnp.minimum(t, bank.num_steps - 1)
    agents, valid = bank.agent_traj[scenario_idx, t], bank.agent_valid[scenario_idx, t]
    return scenario_idx, cameras.actor_poses(ego, agents, valid, False), cameras.view_matrices(ego, rig)


def commit(tree):
    """Place arrays on JAX's default device as *committed* arrays. A jitted function's cache
    key includes whether each argument is committed, and eagerly created arrays are not
    while jit outputs are: loops that feed a function first fresh arrays, then its own
    outputs, would otherwise compile it twice."""
    return jax.device_put(tree, jax.devices()[0])


def flatten_lead(tree, n_lead: int):
    """Merge the first n_lead axes of every leaf into one."""
    return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[n_lead:]), tree)


# ---------------------------------------------------------------- torch side: images
@dataclasses.dataclass
class Camera:
    """A `render_bridge.renderer.Renderer` over a bank's scenes plus the batching rules
    the learners need (any leading dims)."""

    renderer: object

    @property
    def rig(self):
        return self.renderer.rig

    @property
    def image_shape(self) -> tuple:
        return self.renderer.image_shape

    @staticmethod
    def build(render_cfg, bank, device=None) -> "Camera":
        """Procedural 3DGS world of every scenario in `bank` with the configured budget.

        backend "gsplat" without CUDA (or without the gsplat package) stops with a message
        naming `render.backend`; the reference splatter runs only when asked for."""
        from render_bridge import backends
        from render_bridge.cameras import RigConfig
        from render_bridge.procedural_world import WorldConfig, build_scene_bank
        from render_bridge.renderer import Renderer

        try:
            backend = backends.resolve(render_cfg.backend)
        except ValueError as err:
            raise ValueError(
                f"'render.backend' is {render_cfg.backend!r} but {err}; on a machine without CUDA set "
                "render.backend=reference (the slow pure-torch splatter) explicitly"
            ) from None
        world = WorldConfig(target_gaussians=render_cfg.gaussians, actor_gaussians=render_cfg.actor_gaussians,
                            buildings=render_cfg.buildings)  # fmt: skip
        rig = RigConfig(render_cfg.rig, render_cfg.width, render_cfg.height)
        scenes = build_scene_bank(bank, world, device=_device(backend, device))
        return Camera(
            Renderer(scenes, rig, backend=backend, device=_device(backend, device), max_batch=render_cfg.max_batch)
        )

    def render(self, inputs, n_lead: int = 1) -> jax.Array:
        """uint8 images (*lead, C, H, W, 3) for render inputs with `n_lead` leading dims."""
        lead = inputs[0].shape[:n_lead]
        flat = flatten_lead(inputs, n_lead)
        try:
            images = self.renderer.render(*flat)
        except RuntimeError as err:  # torch's CUDA out-of-memory is a RuntimeError subclass
            if "out of memory" in str(err).lower():
                raise MemoryError(
                    f"rendering {flat[0].shape[0]} envs x {self.rig.num_cameras} cameras of "
                    f"{self.rig.width}x{self.rig.height} ran out of GPU memory; lower render.max_batch, "
                    "ppo.num_envs, render.gaussians or the image size"
                ) from err
            raise
        return images.reshape(lead + images.shape[1:])


def _device(backend: str, device):
    if device is not None:
        return device
    if backend == "gsplat":
        return "cuda"
    from render_bridge.dlpack_bridge import default_torch_device

    return default_torch_device()
