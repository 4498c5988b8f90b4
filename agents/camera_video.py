"""Episode videos of camera policies: what the cameras showed the policy, beside the BEV.

Each GIF frame is the rig's images (tiled, three cameras per row, scaled to the BEV's
height) on the left and the top-down view of `agents.video.draw_frames` on the right,
one frame per decision until the episode ends.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from agents import adversaries
from agents.camera_eval import _compiled
from agents.camera_obs import commit, stack_frames
from agents.commands.render import tile
from agents.video import draw_frames


def camera_episode(env, camera, network, net_params, params, idx: int, key, ego: bool = True,
                   frames: int = 1) -> tuple[list, dict]:  # fmt: skip
    """(images per decision [(C, H, W, 3) uint8, the newest frame], BEV trace as
    `agents.video.episode_trace`) of one greedy episode on scenario `idx`; params batched
    over one episode; frames: env steps the policy sees (`render.frames`)."""
    reset, act, _, step = _compiled(env, network.apply, network.discrete, 1, camera.rig, ego, False, None)
    seed_params = jax.tree.map(lambda x: x[None], net_params)
    keys = commit(jax.random.split(key, 1))
    vec, state, inputs = reset(keys, params, np.array([idx], np.int32))
    done = commit(np.zeros((1, 1), bool))
    sizes = np.asarray(params.bank.agent_size[idx])
    images, trace, stack = [], {k: [] for k in ("ego", "agents", "valid", "sizes", "event")}, None
    steps = -(-(params.bank.num_steps - 1) // env.config.substeps)
    for t in range(steps + 1):
        img = camera.render(inputs, n_lead=2)
        stack = stack_frames(img, frames, prev=stack)
        poses = np.asarray(inputs[1])[0, 0]  # (1 + A, 4) [x, y, yaw, visible], slot 0 = ego
        images.append(np.asarray(img)[0, 0])
        trace["ego"].append(np.concatenate([poses[0, :3], np.asarray(state.ego)[0, 0, 3:4]]))
        trace["agents"].append(np.concatenate([poses[1:, :3], np.zeros((len(poses) - 1, 1))], -1))
        trace["valid"].append(poses[1:, 3] > 0.5)
        trace["sizes"].append(sizes)
        trace["event"].append(int(np.asarray(state.metrics.event)[0, 0]))
        if bool(np.asarray(done)[0, 0]) or t == steps:
            break
        k = jax.vmap(lambda kk: jax.random.fold_in(kk, t))(keys)
        action = act(seed_params, stack, vec, k)
        state, vec, done, inputs = step(k, state, vec, done, action, params)
    return images, {k: np.stack(v) for k, v in trace.items()}


def write_camera_videos(env, params, camera, network, seed_params, cfg, out: str, name: str) -> list[str]:
    """GIFs of the first `cfg.eval.videos` held-out scenarios for seed 0 (first DAA behaviour
    when DAA is on); returns the paths."""
    from PIL import Image

    p0 = jax.tree.map(lambda x: x[0], seed_params)
    behaviours = cfg.daa.behaviours[:1] if (cfg.daa.enabled and adversaries.daa_available()) else ()
    key = jax.random.PRNGKey(cfg.eval.seed)
    os.makedirs(os.path.join(out, "videos"), exist_ok=True)
    paths = []
    for idx in range(min(cfg.eval.videos, params.bank.num_scenarios)):
        one = adversaries.with_daa(params, 1, behaviours, jax.random.fold_in(key, idx))
        images, trace = camera_episode(
            env, camera, network, p0, one, idx, jax.random.fold_in(key, idx), cfg.render.ego_state, cfg.render.frames
        )
        bev = draw_frames(trace, params.bank, idx, title=f"{name} {'/'.join(behaviours) or 'log'} #{idx}")
        frames = []
        for cam, top in zip(images, bev):
            side = Image.fromarray(tile(cam))
            side = side.resize((max(1, side.width * top.height // side.height), top.height), Image.NEAREST)
            frame = Image.new("RGB", (side.width + top.width, top.height))
            frame.paste(side, (0, 0))
            frame.paste(top, (side.width, 0))
            frames.append(frame)
        path = os.path.join(out, "videos", f"{name.lower()}_camera_{idx}.gif")
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(100 * env.config.substeps), loop=0)
        paths.append(path)
    return paths
