"""Adversary target selection for one env, from geometry relative to the ego.

Every vehicle is classified by its bumper gap along the ego's heading and its lateral
offset from the ego's lane (lane polylines of the scenario, lane graph for which
neighbours exist). Per behaviour the qualifying vehicle with the smallest BEV distance
to the ego is chosen:

  cut_in_left/right: vehicle in the left/right neighbour lane, centre within
                     [-25, +15] m of the ego's centre (slightly behind or ahead).
  hard_brake:        lead vehicle in the ego's lane (ahead, within 60 m).
  lane_change:       vehicle ahead in either neighbour lane (gap in (0, 40] m).
  merge:             vehicle right of the ego's lane within [-25, 40] m, preferring one on
                     a ramp (no right neighbour lane, beyond it, or heading into the lane).

When none qualifies, `spawn_pose` places an adversary in an unused agent slot (fallback
SPAWN) or the episode is played plain (fallback PLAIN); `daa.check` records which.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsim.daa.frames import lane_frame
from jaxsim.daa.params import Behaviour, Knobs
from jaxsim.geometry import to_local, to_world, wrap_angle
from jaxsim.scenario import AgentType

SPAWN_SIZE = (4.5, 1.9)  # m, a spawned adversary's box


def select_target(behaviour, ego, ego_size, lane_pts, lane_n, lane_w, has_left, has_right, agents, valid, sizes, types):
    """Slot of the adversary for `behaviour`.

    Args: ego (4,) pose; ego_size (2,); lane_pts (P, 2), lane_n (), lane_w () m: the ego's
      lane; has_left/has_right () bool: neighbour lanes exist; agents (A, 4), valid (A,),
      sizes (A, 2), types (A,) at the reset step.
    Returns: (slot () int32, found () bool).
    """
    rel = to_local(agents[:, :2], ego[None, :3])
    half = 0.5 * (ego_size[0] + sizes[:, 0])
    gap = rel[:, 0] - half
    d, lane_yaw = jax.vmap(lane_frame, in_axes=(None, None, 0))(lane_pts, lane_n, agents[:, :2])
    dyaw = wrap_angle(agents[:, 2] - lane_yaw)
    vehicle = valid & (types == AgentType.VEHICLE)
    aligned = jnp.abs(dyaw) < 0.6
    same = jnp.abs(d) < 0.5 * lane_w
    left = (d >= 0.5 * lane_w) & (d < 1.6 * lane_w)
    right = (d <= -0.5 * lane_w) & (d > -1.6 * lane_w)
    near = (rel[:, 0] >= -25.0) & (rel[:, 0] <= 15.0)
    ramp = (d <= -0.5 * lane_w) & (d > -3.0 * lane_w) & (rel[:, 0] >= -25.0) & (rel[:, 0] <= 40.0)
    on_ramp = ~has_right | (d <= -1.6 * lane_w) | (dyaw > 0.05)
    b = jnp.asarray(behaviour, jnp.int32)
    ok = jnp.select(
        [b == Behaviour.CUT_IN_LEFT, b == Behaviour.CUT_IN_RIGHT, b == Behaviour.HARD_BRAKE,
         b == Behaviour.LANE_CHANGE, b == Behaviour.MERGE],
        [left & has_left & near, right & has_right & near, same & (gap > 0.0) & (rel[:, 0] < 60.0),
         ((left & has_left) | (right & has_right)) & (gap > 0.0) & (gap <= 40.0), ramp],
        jnp.zeros_like(valid),
    ) & vehicle & aligned  # fmt: skip
    bev = jnp.sqrt(jnp.sum(rel * rel, axis=-1))
    # a merge prefers a vehicle on the ramp over one in the plain right neighbour lane
    score = jnp.where(ok, bev + jnp.where((b == Behaviour.MERGE) & ~on_ramp, 1000.0, 0.0), jnp.inf)
    slot = jnp.argmin(score).astype(jnp.int32)
    found = jnp.isfinite(score[slot])
    return jnp.where(found, slot, -1), found


def free_slot(agent_valid_any: jnp.ndarray, types: jnp.ndarray):
    """First agent slot never observed in the log and marked PAD: (slot () int32, found () bool)."""
    free = ~agent_valid_any & (types == AgentType.PAD)
    slot = jnp.argmax(free).astype(jnp.int32)
    return jnp.where(free[slot], slot, -1), free[slot]


def spawn_pose(behaviour, knobs: Knobs, ego, ego_size, d_ego, lane_w, has_left):
    """World pose (4,) and lateral target offset () of a spawned adversary.

    Placed relative to the ego (d_ego: the ego's offset from its lane): cut-ins and merges
    one lane over, just behind the ego at its speed; a hard-braking lead `trigger_gap`
    + 3 m ahead in the ego's lane, 2 m/s slower; a lane changer one lane over (left if
    it exists), `trigger_gap` + 3 m ahead, at least 2 m/s slower. Off-road placements are caught by
    the trajectory check.
    """
    b = jnp.asarray(behaviour, jnp.int32)
    half = 0.5 * (ego_size[0] + SPAWN_SIZE[0])
    side = jnp.select(
        [b == Behaviour.CUT_IN_LEFT, b == Behaviour.CUT_IN_RIGHT, b == Behaviour.MERGE, b == Behaviour.LANE_CHANGE],
        [1.0, -1.0, -1.0, jnp.where(has_left, 1.0, -1.0)],
        0.0,
    )
    ahead = (b == Behaviour.HARD_BRAKE) | (b == Behaviour.LANE_CHANGE)
    dx = jnp.where(ahead, half + knobs.trigger_gap + 3.0, -half + 1.0)
    # vehicles ahead are slower so that the ego closes in and meets the trigger
    dv = jnp.where(b == Behaviour.LANE_CHANGE, jnp.minimum(knobs.speed_offset, -2.0), jnp.where(ahead, -2.0, 0.0))
    d_target = side * lane_w
    xy = to_world(jnp.stack([dx, d_target - d_ego]), ego[:3])
    speed = jnp.maximum(ego[3] + dv, 0.0)
    return jnp.stack([xy[0], xy[1], ego[2], speed]), d_target
