"""Online restoration: the DriveRestorer applied to every rendered batch.

    renderer = RestoringRenderer(Renderer(bank, rig), restorer, seed=0)
    cam_env = CameraObsEnv(env, renderer)               # observations are restored renders
    view = RestoredScene(scene, restorer)                # a ReconScene whose render() is restored
    evaluate.novel_view_table(view, bank, idx)           # column (b): restorer applied to renders

Both flatten (B, C, H, W, 3) to camera images, run the restorer's few-step DDIM with a
fixed seed (the same frame restores to the same image, whatever the batch) and keep shape, dtype and device. The
restorer must be trained for the rig's image size. Expect it to cost far more than the
render (8 UNet passes per image): measure with `online_throughput`; for training at
scale, refine the reconstruction offline instead (`refine`).
"""

from __future__ import annotations

import time

import torch

from render_bridge import dlpack_bridge as bridge


def _restore_batch(restorer, images: torch.Tensor, seed: int, steps: int | None, strength: float) -> torch.Tensor:
    """(B, C, H, W, 3) uint8 / float torch -> restored, same shape, dtype and device."""
    lead = images.shape[:-3]
    flat = images.reshape((-1,) + tuple(images.shape[-3:]))
    out = restorer.restore(flat.to(restorer.device), seed=seed, steps=steps, strength=strength)
    return out.reshape(lead + tuple(images.shape[-3:])).to(images.device).contiguous()


class RestoringRenderer:
    """A `Renderer` whose images pass through the restorer (drop-in for `CameraObsEnv`)."""

    def __init__(self, renderer, restorer, seed: int = 0, steps: int | None = None, strength: float = 1.0):
        h, w = renderer.rig.height, renderer.rig.width
        if tuple(restorer.cfg.image_size) != (h, w):
            raise ValueError(
                f"restorer image_size {restorer.cfg.image_size} does not match the rig's (height, width) = {(h, w)}"
            )
        self.renderer, self.restorer, self.seed, self.steps, self.strength = renderer, restorer, seed, steps, strength

    @property
    def rig(self):
        return self.renderer.rig

    @property
    def image_shape(self) -> tuple:
        return self.renderer.image_shape

    @property
    def device(self):
        return self.renderer.device

    def render_torch(self, scenario_idx, poses, viewmats) -> torch.Tensor:
        """Restored images (B, C, H, W, 3) torch, same dtype as the wrapped renderer's."""
        return _restore_batch(self.restorer, self.renderer.render_torch(scenario_idx, poses, viewmats), self.seed,
                              self.steps, self.strength)  # fmt: skip

    def render(self, scenario_idx, poses, viewmats):
        """JAX in, JAX out (DLPack both ways), like `Renderer.render`."""
        t_idx, t_poses, t_views = (bridge.jax_to_torch(x) for x in (scenario_idx, poses, viewmats))
        return bridge.torch_to_jax(self.render_torch(t_idx, t_poses, t_views))

    def render_rows(self, scenario_idx, poses, viewmats, mask):
        """`Renderer.render_rows` (the envs where mask is True, e.g. final states) through this
        wrapper's restored `render`."""
        return type(self.renderer).render_rows(self, scenario_idx, poses, viewmats, mask)

    def __getattr__(self, name):
        """Plain attributes of the wrapped renderer (backend, dtype, scene_bank, ...)."""
        if name == "renderer":  # not set yet: no recursion
            raise AttributeError(name)
        return getattr(self.renderer, name)


class RestoredScene:
    """A `ReconScene` view whose `render` restores its images; other attributes pass through."""

    def __init__(self, scene, restorer, seed: int = 0, steps: int | None = None, strength: float = 1.0):
        self.scene, self.restorer, self.seed, self.steps, self.strength = scene, restorer, seed, steps, strength
        self.timeline, self.calib, self.meta = scene.timeline, scene.calib, scene.meta

    @property
    def device(self):
        return self.scene.device

    @property
    def num_actor_slots(self) -> int:
        return self.scene.num_actor_slots

    def render(self, ego_poses, actor_poses, rig=None, backend: str = "auto") -> torch.Tensor:
        """(V, C, H, W, 3) float32 in [0, 1]: the scene's render, restored."""
        return _restore_batch(self.restorer, self.scene.render(ego_poses, actor_poses, rig, backend), self.seed,
                              self.steps, self.strength)  # fmt: skip


def online_throughput(cam_env, params, key, action, steps: int = 5) -> dict:
    """Env-steps/s of a `CameraObsEnv` stepping `steps` times with the fixed batched `action`
    (B, ...) (after one warm-up step, which also compiles the jitted simulator step)."""
    import jax

    obs, state = cam_env.reset(key, params)
    obs, state, *_ = cam_env.step(key, state, action, params)
    jax.block_until_ready(obs)
    t0 = time.perf_counter()
    for _ in range(steps):
        obs, state, *_ = cam_env.step(key, state, action, params)
    jax.block_until_ready(obs)
    secs = time.perf_counter() - t0
    return {
        "env_steps_per_s": steps * cam_env.num_envs / secs,
        "num_envs": cam_env.num_envs,
        "steps": steps,
        "seconds": secs,
    }
