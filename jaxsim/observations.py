"""Observations for one env, in the ego frame (x forward, y left), jit- and vmap-friendly.

`observe` dispatches on `EnvConfig.obs`:
  "none":   an empty (0,) array (throughput runs, custom observations).
  "vector": a flat float32 vector; `vector_layout(config)` gives the slices:
    ego    (7,)      speed, last accel, last steer, route lateral offset, heading error,
                     longitudinal and lateral acceleration.
    agents (K, 9)    K nearest valid agents: x, y, cos/sin relative yaw, vx, vy
                     (relative velocity), length, width, valid flag; zero-padded.
    route  (R, 2)    points every `ROUTE_SPACING` m ahead along the reference path.
    lanes  (3, M, 3) M centerline points (x, y, valid flag) from the nearest lane
                     onwards, on the ego's lane and on its left and right neighbours.
    road   (5,)      drivable-area SDF (m) at the ego and 5 m ahead/behind/left/right.
    gaps   (7,)      only with `EnvConfig.obs_gaps`: for the nearest agent ahead and the
                     nearest behind in the ego's corridor (`jaxsim.drivers.lead_gap`,
                     constant-velocity look-ahead): gap (capped at GAP_CAP m), closing
                     speed and inverse time to collision (1/s, in [0, 2]; 0 = opening or
                     none); then the ego's lead (+) or lag (-) in m along its reference
                     path against the reference's own timing at this step.
  "bev":    a (bev_size, bev_size, 5) float32 raster, see `jaxsim.bev`.
Positions are divided by `POS_SCALE` and speeds by `SPEED_SCALE` so values stay O(1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsim import events as ev_lib
from jaxsim.drivers import lead_gap
from jaxsim.geometry import sdf_lookup, to_local, to_world, wrap_angle

POS_SCALE = 20.0
SPEED_SCALE = 10.0
ROUTE_SPACING = 4.0
LANE_STRIDE = 4  # subsample lane polylines for the nearest-point search
EGO_DIM, AGENT_DIM, ROUTE_DIM, LANE_DIM, ROAD_DIM, GAPS_DIM = 7, 9, 2, 3, 5, 7
GAP_CAP = 50.0  # m: "no agent in the corridor" reads as a gap this large


def vector_layout(config) -> dict[str, tuple[int, int, tuple[int, ...]]]:
    """name -> (start, stop, shape) of each block in the flat vector observation."""
    blocks = {
        "ego": (EGO_DIM,),
        "agents": (config.num_obs_agents, AGENT_DIM),
        "route": (config.num_route_points, ROUTE_DIM),
        "lanes": (3, config.num_lane_points, LANE_DIM),
        "road": (ROAD_DIM,),
    }
    if config.obs_gaps:
        blocks["gaps"] = (GAPS_DIM,)
    out, start = {}, 0
    for name, shape in blocks.items():
        size = 1
        for s in shape:
            size *= s
        out[name] = (start, start + size, shape)
        start += size
    return out


def split_vector(obs: jnp.ndarray, config) -> dict[str, jnp.ndarray]:
    """Unflatten (..., D) vector observations into the named blocks of `vector_layout`."""
    return {
        name: obs[..., a:b].reshape(obs.shape[:-1] + shape) for name, (a, b, shape) in vector_layout(config).items()
    }


def observe(config, state, params, agents, agent_valid, agent_sizes) -> jnp.ndarray:
    if config.obs == "none":
        return jnp.zeros((0,), jnp.float32)
    if config.obs in ("vector", "camera"):  # camera: images are added by render_bridge
        return vector_obs(config, state, params, agents, agent_valid, agent_sizes)
    from jaxsim import bev

    return bev.bev_obs(config, state, params, agents, agent_valid, agent_sizes)


def _nearest(d2: jnp.ndarray, k: int):
    """Indices of the k smallest entries of d2 (N,); inf-padded when k > N."""
    if k > d2.shape[0]:
        d2 = jnp.concatenate([d2, jnp.full((k - d2.shape[0],), jnp.inf)])
    neg, idx = jax.lax.top_k(-d2, k)
    return -neg, jnp.minimum(idx, d2.shape[0] - 1)


def vector_obs(config, state, params, agents, agent_valid, agent_sizes) -> jnp.ndarray:
    """Flat vector observation (see module docstring). agents (A, 4), valid (A,), sizes (A, 2)."""
    bank, i = params.bank, state.scenario_idx
    ego = state.ego
    pose = ego[:3]

    # ego block
    dist, yaw_ref, arc, lateral = ev_lib.route_frame(state.route, state.route_len, ego[:2])
    ego_block = jnp.stack(
        [
            ego[3] / SPEED_SCALE,
            state.controls[0] / 4.0,
            state.controls[1],
            lateral,
            wrap_angle(ego[2] - yaw_ref),
            state.accel[0] / 4.0,
            state.accel[1] / 4.0,
        ]
    )

    # K nearest agents
    rel = to_local(agents[:, :2], pose[None])
    d2 = jnp.where(agent_valid, jnp.sum(rel * rel, axis=-1), jnp.inf)
    near_d2, idx = _nearest(d2, config.num_obs_agents)
    dyaw = agents[idx, 2] - ego[2]
    vel = agents[idx, 3:4] * jnp.stack([jnp.cos(dyaw), jnp.sin(dyaw)], axis=-1) - jnp.array([ego[3], 0.0])
    valid = jnp.isfinite(near_d2).astype(jnp.float32)
    agent_block = (
        jnp.concatenate(
            [
                rel[idx] / POS_SCALE,
                jnp.stack([jnp.cos(dyaw), jnp.sin(dyaw)], axis=-1),
                vel / SPEED_SCALE,
                agent_sizes[idx] / 5.0,
                valid[:, None],
            ],
            axis=-1,
        )
        * valid[:, None]
    )

    # route points ahead by arc length
    route_xy = state.route[:, :2]
    seg = jnp.sqrt(jnp.sum(jnp.diff(route_xy, axis=0) ** 2, axis=-1) + 1e-12)
    seg = jnp.where(jnp.arange(seg.shape[0]) < state.route_len - 1, seg, 0.0)
    cum = jnp.concatenate([jnp.zeros((1,)), jnp.cumsum(seg)])
    query = arc + ROUTE_SPACING * jnp.arange(1, config.num_route_points + 1)
    # beyond the end of the route, continue straight along the last heading
    end_i = state.route_len - 1
    overshoot = jnp.maximum(query - cum[end_i], 0.0)
    q = jnp.minimum(query, cum[end_i])
    pts = jnp.stack([jnp.interp(q, cum, route_xy[:, 0]), jnp.interp(q, cum, route_xy[:, 1])], axis=-1)
    end_yaw = state.route[end_i, 2]
    pts = pts + overshoot[:, None] * jnp.stack([jnp.cos(end_yaw), jnp.sin(end_yaw)])
    route_block = to_local(pts, pose[None]) / POS_SCALE

    # lanes: the ego's lane (nearest centerline) and its left/right neighbours, points ahead
    lanes = bank.lane_points[i, :, ::LANE_STRIDE]  # (L, P', 2) coarse samples for the search
    lane_ok = (jnp.arange(lanes.shape[1]) * LANE_STRIDE)[None, :] < bank.lane_num_points[i, :, None]
    d2 = jnp.sum((lanes - ego[None, None, :2]) ** 2, axis=-1)
    d2 = jnp.where(lane_ok, d2, jnp.inf)
    own = jnp.argmin(jnp.min(d2, axis=1))
    lane_ids = jnp.stack([own, bank.lane_left[i, own], bank.lane_right[i, own]])
    exists = (lane_ids >= 0) & jnp.isfinite(jnp.min(d2, axis=1))[jnp.maximum(lane_ids, 0)]
    lane_ids = jnp.maximum(lane_ids, 0)
    start = jnp.argmin(d2[lane_ids], axis=1) * LANE_STRIDE  # (3,) nearest coarse sample
    n = config.num_lane_points
    idx = start[:, None] + jnp.arange(n)[None, :]
    count = bank.lane_num_points[i, lane_ids]
    pts = bank.lane_points[i, lane_ids[:, None], jnp.minimum(idx, bank.lane_max_points - 1)]  # (3, n, 2)
    lvalid = ((idx < count[:, None]) & exists[:, None]).astype(jnp.float32)
    lane_rel = to_local(pts, pose[None, None])
    lane_block = jnp.concatenate([lane_rel / POS_SCALE, lvalid[..., None]], axis=-1) * lvalid[..., None]

    # drivable-area probes
    probes = to_world(jnp.array([[0.0, 0.0], [5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]]), pose[None])
    road_block = sdf_lookup(bank.sdf, bank.sdf_origin[i], bank.sdf_res[i], probes, index=i) / 5.0

    blocks = [ego_block, agent_block.ravel(), route_block.ravel(), lane_block.ravel(), road_block]
    if config.obs_gaps:
        blocks.append(gaps_block(state, bank.ego_size[i], agents, agent_valid, agent_sizes, arc, cum))
    return jnp.concatenate(blocks).astype(jnp.float32)


def gaps_block(state, ego_size, agents, agent_valid, agent_sizes, arc, route_cum) -> jnp.ndarray:
    """(GAPS_DIM,) the `gaps` block (module docstring); route_cum (T,) the reference's
    cumulative arc length m, arc the ego's arc length m along it."""
    out = []
    for behind in (False, True):
        gap, closing = lead_gap(state.ego, ego_size, agents, agent_valid, agent_sizes, behind=behind)
        gap = jnp.minimum(gap, GAP_CAP)
        closing = jnp.where(gap < GAP_CAP, closing, 0.0)
        inv_ttc = jnp.clip(closing / jnp.maximum(gap, 0.5), 0.0, 2.0)
        out += [gap / POS_SCALE, closing / SPEED_SCALE, inv_ttc]
    ref_arc = route_cum[jnp.clip(state.t, 0, state.route_len - 1)]
    return jnp.stack(out + [(arc - ref_arc) / POS_SCALE])
