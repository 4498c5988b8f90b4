"""Top-down episode videos (animated GIF, Pillow only) of a learned policy in closed loop.

Each frame is a 60 m window centred on the ego: lane centerlines grey, the reference path
green, other agents blue (the DAA adversary orange), the ego red. Frames stop at the
episode's end; the title line names the event that ended it.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from agents import adversaries
from agents import policies as pol
from jaxsim.geometry import box_corners
from jaxsim.metrics import NO_EVENT
from jaxsim.rollout import episode_steps, unroll

EVENT_NAMES = {
    0: "completed",
    1: "dynamic collision",
    2: "static collision",
    3: "position deviation",
    4: "heading deviation",
}


def episode_trace(env, params, network, net_params, idx: int, key) -> dict:
    """Numpy arrays per env step: ego (S+1, 4), agents (S+1, A, 4), valid, sizes, event (S+1,)."""
    steps = episode_steps(env, params)

    @jax.jit
    def run(net_params, params, key):
        obs, state = env.reset_to(key, params, idx)
        policy = lambda k, obs, state: pol.to_env_action(  # noqa: E731
            pol.mode(network.apply(net_params, obs)), params.dynamics, network.discrete
        )

        def frame(st):
            return (st.next_state.ego, *env.current_agents(st.next_state, params), st.next_state.metrics.event, st.done)

        first = (state.ego, *env.current_agents(state, params), jnp.int32(NO_EVENT), jnp.bool_(False))
        _, frames = unroll(env, params, policy, key, obs, state, steps, frame)
        return jax.tree.map(lambda f, x: jnp.concatenate([f[None], x]), first, frames)

    ego, agents, valid, sizes, event, done = jax.tree.map(np.asarray, run(net_params, params, key))
    keep = int(np.sum(~done))  # frames up to and including the final step
    return {"ego": ego[:keep], "agents": agents[:keep], "valid": valid[:keep], "sizes": sizes[:keep],
            "event": event[:keep]}  # fmt: skip


def draw_frames(trace: dict, bank, idx: int, size: int = 360, span: float = 60.0, title: str = ""):
    from PIL import Image, ImageDraw

    lanes = np.asarray(bank.lane_points[idx])
    n_pts = np.asarray(bank.lane_num_points[idx])
    route = np.asarray(bank.ego_traj[idx])[np.asarray(bank.ego_valid[idx])]
    ego_size = np.asarray(bank.ego_size[idx])
    scale = size / span
    frames = []
    for k in range(len(trace["ego"])):
        c = trace["ego"][k, :2]

        def px(p, c=c):
            q = (np.asarray(p)[..., :2] - c) * scale
            return [(float(size / 2 + x), float(size / 2 - y)) for x, y in q.reshape(-1, 2)]

        img = Image.new("RGB", (size, size), (250, 250, 250))
        d = ImageDraw.Draw(img)
        for lane, n in zip(lanes, n_pts):
            if n >= 2:
                d.line(px(lane[:n]), fill=(190, 190, 190), width=2)
        d.line(px(route[:, :2]), fill=(60, 170, 60), width=2)
        for a in range(trace["agents"].shape[1]):
            if trace["valid"][k, a]:
                box = np.concatenate([trace["agents"][k, a, :3], trace["sizes"][k, a]])
                d.polygon(px(np.asarray(box_corners(jnp.asarray(box)))), fill=(80, 120, 220))
        ego_box = np.concatenate([trace["ego"][k, :3], ego_size])
        d.polygon(px(np.asarray(box_corners(jnp.asarray(ego_box)))), fill=(220, 50, 50))
        ev = EVENT_NAMES[int(trace["event"][k])] if k == len(trace["ego"]) - 1 else ""
        d.text((5, 5), f"{title} t={k} v={trace['ego'][k, 3]:.1f} m/s {ev}", fill=(0, 0, 0))
        frames.append(img)
    return frames


def write_videos(env, params, network, seed_params, cfg, out: str, name: str) -> list[str]:
    """GIFs of the first `cfg.eval.videos` held-out scenarios for seed 0 of `seed_params`,
    with the first DAA behaviour when DAA is on; returns the paths."""
    p0 = jax.tree.map(lambda x: x[0], seed_params)
    behaviours = cfg.daa.behaviours[:1] if (cfg.daa.enabled and adversaries.daa_available()) else ()
    key = jax.random.PRNGKey(cfg.eval.seed)
    one = jax.tree.map(lambda x: x[0], adversaries.with_daa(params, 1, behaviours, key).replace(bank=None))
    one = one.replace(bank=params.bank)
    os.makedirs(os.path.join(out, "videos"), exist_ok=True)
    paths = []
    for idx in range(min(cfg.eval.videos, params.bank.num_scenarios)):
        trace = episode_trace(env, one, network, p0, idx, jax.random.fold_in(key, idx))
        frames = draw_frames(trace, params.bank, idx, title=f"{name} {'/'.join(behaviours) or 'log'} #{idx}")
        path = os.path.join(out, "videos", f"{name.lower()}_{idx}.gif")
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(100 * env.config.substeps), loop=0)
        paths.append(path)
    return paths
