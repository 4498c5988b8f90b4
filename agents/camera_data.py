"""Imitation data from pixels: expert-log and CTG-cousin pairs rendered once and cached.

Every valid pair of the vector learner (`agents.il.expert_pairs`, the CTG cousin batch)
is an ego pose at a log step of a scenario: the camera pair renders that pose with the
other agents as logged and keeps the image as uint8 on the device, so IL epochs never
re-render. With `render.frames` F > 1 the pair also renders the same trajectory's poses
1 .. F-1 env steps earlier (clamped to its start, as an episode's first stack repeats its
first frame), oldest first along the camera axis. The vector observation of the pair
travels as `privileged` (the perception head's target); the policy's observation is
`{"image", "ego"}` (`agents.camera_obs`).

DAgger rounds roll the camera policy out in closed loop (`agents.camera_eval`) and keep
its own rendered observations with the expert's labels, or a privileged teacher's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from agents.camera_obs import ego_state, logged_render_inputs
from agents.il import Pairs, expert_pairs, normalise_controls


def render_logged_poses(camera, bank, scenario_idx, t, ego, chunk: int = 4096) -> jax.Array:
    """uint8 images (M, C, H, W, 3) of ego poses ego (M, 4) at log steps t (M,) of scenarios (M,)."""
    fn = jax.jit(jax.vmap(lambda i, tt, e: logged_render_inputs(bank, camera.rig, i, tt, e)))
    out = []
    for s in range(0, int(scenario_idx.shape[0]), chunk):
        sl = slice(s, s + chunk)
        out.append(camera.render(fn(scenario_idx[sl], t[sl], ego[sl]), n_lead=1))
    return jnp.concatenate(out) if len(out) > 1 else out[0]


def to_camera_pairs(camera, bank, vec_pairs: Pairs, scenario_idx, t, ego, env_cfg, with_ego: bool) -> Pairs:
    """Camera pairs from vector pairs with their provenance: scenario (M,), and per frame
    (oldest first) log step t (F, M) and ego pose ego (F, M, 4); invalid pairs are dropped
    before rendering."""
    keep = np.flatnonzero(np.asarray(vec_pairs.valid))
    sel = jnp.asarray(keep)
    ids = jnp.asarray(scenario_idx)[sel]
    frames = [
        render_logged_poses(camera, bank, ids, jnp.asarray(tf)[sel], jnp.asarray(ef)[sel]) for tf, ef in zip(t, ego)
    ]
    images = jnp.concatenate(frames, axis=-4) if len(frames) > 1 else frames[0]
    vec = vec_pairs.obs[sel]
    obs = {"image": images, "ego": ego_state(vec, env_cfg)} if with_ego else {"image": images}
    return Pairs(obs=obs, action_discrete=vec_pairs.action_discrete[sel], action_continuous=vec_pairs.action_continuous[sel],
                 valid=jnp.ones((keep.size,), bool), privileged=vec)  # fmt: skip


def _frame_offsets(frames: int, substeps: int) -> np.ndarray:
    """Log steps back to each frame of a stack, oldest first: (F,)."""
    return substeps * np.arange(frames - 1, -1, -1)


def expert_camera_pairs(env, params, camera, scenario_ids, stride: int, with_ego: bool, frames: int = 1) -> Pairs:
    """Rendered pairs at every `stride`-th step of each scenario's expert log."""
    bank = params.bank
    ids = np.asarray(scenario_ids, np.int32)
    vec = expert_pairs(env, params, ids, stride=stride)
    ts = np.arange(0, bank.num_steps - 1, stride, dtype=np.int32)
    ii, tt = np.repeat(ids, ts.size), np.tile(ts, ids.size)  # expert_pairs' row order
    tf = np.maximum(tt[None] - _frame_offsets(frames, env.config.substeps)[:, None], 0)  # (F, M)
    ego = np.asarray(bank.ego_traj)[ii[None], tf]
    return to_camera_pairs(camera, bank, vec, ii, tf, ego, env.config, with_ego)


def cousin_camera_pairs(env, params, camera, num_cousins: int, stride: int, with_ego: bool, key,
                        frames: int = 1) -> Pairs:  # fmt: skip
    """Rendered pairs along CTG cousins of every scenario (every `stride`-th step)."""
    from jaxsim.ctg.config import CTGConfig
    from jaxsim.ctg.imitation import imitation_batch

    n = params.bank.num_scenarios
    b = imitation_batch(key, env, params, n, CTGConfig(num_cousins=num_cousins), scenario_idx=jnp.arange(n))
    valid = b["valid"] & (b["t"] % stride == 0)
    vec = Pairs(obs=b["obs"], action_discrete=b["action_discrete"].astype(jnp.int32),
                action_continuous=normalise_controls(b["action_continuous"], params.dynamics), valid=valid)  # fmt: skip
    # rows are (scenario, cousin, step)-major with consecutive steps, so the pose d steps
    # earlier on the same cousin is d rows up (d clamped to the row's own step)
    t = np.asarray(b["t"])
    back = np.minimum(_frame_offsets(frames, env.config.substeps)[:, None], t[None])  # (F, M)
    rows = np.arange(t.size)[None] - back
    return to_camera_pairs(camera, params.bank, vec, b["scenario_idx"], t[rows], np.asarray(b["ego"])[rows],
                           env.config, with_ego)  # fmt: skip


def dagger_camera_pairs(env, params, camera, network, seed_params, scenario_ids, key, with_ego: bool,
                        teacher=None, sample: bool = True, frames: int = 1) -> Pairs:  # fmt: skip
    """Labelled states of each seed's own camera policy, (S, M, ...) all valid (cycled to
    equal counts, as `agents.dagger.pad_valid`)."""
    from agents import adversaries
    from agents.camera_eval import rollout_camera
    from agents.dagger import pad_valid

    ids = np.asarray(scenario_ids, np.int32)
    env_p = adversaries.with_daa(params, ids.size, (), key)
    _, rec = rollout_camera(env, camera, network, seed_params, env_p, ids, key, with_ego, sample=sample,
                            record=True, teacher=teacher, frames=frames)  # fmt: skip
    obs = (
        {"image": rec["image"], "ego": ego_state(rec["privileged"], env.config)}
        if with_ego
        else {"image": rec["image"]}
    )
    pairs = Pairs(obs=obs, action_discrete=rec["action_discrete"], action_continuous=rec["action_continuous"],
                  valid=rec["valid"], privileged=rec["privileged"])  # fmt: skip
    return pad_valid(pairs)
