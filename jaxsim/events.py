"""RAD's episode-ending events for one env: dynamic collision, static collision,
position deviation and heading deviation; every dynamic collision also gets an
at-fault class following nuPlan's (`CollisionClass`, checked in this order):

  STOPPED_EGO    the ego stands (< STOPPED m/s) when hit                  not at fault
  STOPPED_OTHER  the ego hits an agent that stands                        at fault
  REAR           the other's centre is behind the ego's rear axle line:   not at fault
                 it ran into the ego from behind (rear-ended while slower)
  FRONT          the other's centre is ahead of the ego's front:          at fault
                 the ego ran into a car ahead (or hit a cut-in with its front)
  LATERAL_*      side by side: at fault only when the ego is changing lanes,
                 i.e. more than `EventParams.lane_change_offset` m off its reference
                 path or heading more than `lane_change_heading` rad off it
Static collisions are always the ego's fault."""

from __future__ import annotations

import enum

import jax.numpy as jnp
from flax import struct

from jaxsim.geometry import box_corners, box_overlap, closest_on_polyline, sdf_lookup, to_local, wrap_angle

STOPPED = 0.05  # m/s, nuPlan's stopped-vehicle speed


class CollisionClass(enum.IntEnum):
    NONE = 0
    STOPPED_EGO = 1  # not at fault
    REAR = 2  # not at fault
    LATERAL_NOT_AT_FAULT = 3
    FRONT = 4  # at fault from here on
    STOPPED_OTHER = 5
    LATERAL_AT_FAULT = 6


COLLISION_CLASS_NAMES = tuple(c.name.lower() for c in CollisionClass)


@struct.dataclass
class EventParams:
    """Event thresholds (RAD): d_max m, psi_max rad; offroad_margin m of SDF tolerated.
    lane_change_offset m / lane_change_heading rad: beyond either the ego counts as
    changing lanes (lateral contacts are then its fault)."""

    d_max: jnp.ndarray = 2.0
    psi_max: jnp.ndarray = 0.6981  # 40 deg
    offroad_margin: jnp.ndarray = 0.0
    check_offroad: jnp.ndarray = True
    lane_change_offset: jnp.ndarray = 0.9
    lane_change_heading: jnp.ndarray = 0.1


@struct.dataclass
class Events:
    """Per-step event flags (bool ()) and the measurements behind them."""

    dynamic_collision: jnp.ndarray
    static_collision: jnp.ndarray
    position_deviation: jnp.ndarray
    heading_deviation: jnp.ndarray
    collision_ahead: jnp.ndarray  # the hit agent's centre is in front of the ego's centre
    collision_class: jnp.ndarray  # int32 `CollisionClass` (NONE without a dynamic collision)
    route_distance: jnp.ndarray  # m to the reference path
    heading_error: jnp.ndarray  # rad, signed (ego - reference)
    route_progress: jnp.ndarray  # m of arc length along the reference path
    lateral_offset: jnp.ndarray  # m, signed (+ = ego left of the path)

    @property
    def at_fault(self) -> jnp.ndarray:
        """bool (): a dynamic collision classed as the ego's fault."""
        return self.collision_class >= CollisionClass.FRONT

    @property
    def any(self) -> jnp.ndarray:
        return self.dynamic_collision | self.static_collision | self.position_deviation | self.heading_deviation


def route_frame(route: jnp.ndarray, num_valid: jnp.ndarray, xy: jnp.ndarray):
    """Closest-point quantities of `xy` (2,) to the reference `route` (T, 4).

    Returns (distance m, reference yaw rad, arc length m, signed lateral offset m).
    """
    dist, i, frac = closest_on_polyline(route[:, :2], xy, num_valid, extend_end=True)
    seg = route[i + 1, :2] - route[i, :2]
    seg_len = jnp.sqrt(jnp.sum(seg * seg) + 1e-12)
    yaw_ref = jnp.arctan2(seg[1], seg[0])
    # heading of a standing segment is undefined: fall back to the logged yaw
    yaw_ref = jnp.where(seg_len > 1e-3, yaw_ref, route[i, 2])
    steps = jnp.sqrt(jnp.sum(jnp.diff(route[:, :2], axis=0) ** 2, axis=-1) + 1e-12)
    arc = jnp.sum(jnp.where(jnp.arange(steps.shape[0]) < i, steps, 0.0)) + frac * seg_len
    cross = seg[0] * (xy[1] - route[i, 1]) - seg[1] * (xy[0] - route[i, 0])
    lateral = jnp.where(cross >= 0, dist, -dist)
    return dist, yaw_ref, arc, lateral


def collision_class(rel_x, ego_length, ego_speed, other_speed, lane_changing) -> jnp.ndarray:
    """`CollisionClass` () int32 of a contact between the ego and one agent (module docstring).

    rel_x: m, the other's centre along the ego's heading from the ego's centre;
    ego_length m; speeds m/s; lane_changing bool ().
    """
    half = 0.5 * ego_length
    lateral = jnp.where(lane_changing, CollisionClass.LATERAL_AT_FAULT, CollisionClass.LATERAL_NOT_AT_FAULT)
    return jnp.select(
        [ego_speed < STOPPED, other_speed < STOPPED, rel_x < -half, rel_x > half],
        [CollisionClass.STOPPED_EGO, CollisionClass.STOPPED_OTHER, CollisionClass.REAR, CollisionClass.FRONT],
        lateral,
    ).astype(jnp.int32)


def detect(
    ego_box: jnp.ndarray,
    agent_boxes: jnp.ndarray,
    agent_valid: jnp.ndarray,
    static_boxes: jnp.ndarray,
    static_valid: jnp.ndarray,
    offroad: jnp.ndarray,
    route: jnp.ndarray,
    route_len: jnp.ndarray,
    p: EventParams,
    ego_speed: jnp.ndarray | None = None,
    agent_speed: jnp.ndarray | None = None,
) -> Events:
    """All events for one env at one step.

    Args:
      ego_box: (5,) [x, y, yaw, length, width]. agent_boxes: (A, 5); agent_valid: (A,).
      static_boxes: (S, 5); static_valid: (S,).
      offroad: () max SDF over the ego corners (m, > 0 means outside the drivable area).
      route: (T, 4) reference path; route_len: () valid points in it.
      ego_speed () and agent_speed (A,) m/s for the at-fault class (None: treated as moving).
    """
    hits = box_overlap(ego_box[None], agent_boxes) & agent_valid
    dynamic = jnp.any(hits)
    rel = to_local(agent_boxes[:, :2], ego_box[None, :3])
    dist2 = jnp.where(hits, jnp.sum(rel * rel, axis=-1), jnp.inf)
    j = jnp.argmin(dist2)
    rel_x = rel[j, 0]  # the nearest hit agent, along the ego's heading
    ahead = dynamic & (rel_x >= 0.0)
    static_hit = jnp.any(box_overlap(ego_box[None], static_boxes) & static_valid)
    static = static_hit | (p.check_offroad & (offroad > p.offroad_margin))
    dist, yaw_ref, arc, lateral = route_frame(route, route_len, ego_box[:2])
    heading_error = wrap_angle(ego_box[2] - yaw_ref)
    changing = (dist > p.lane_change_offset) | (jnp.abs(heading_error) > p.lane_change_heading)  # dist = |lateral|
    # scalars already at hand (no second box gather): this runs every step on the log-replay path
    v_ego = jnp.float32(1.0) if ego_speed is None else ego_speed
    v_other = jnp.float32(1.0) if agent_speed is None else agent_speed[j]
    cls = jnp.where(dynamic, collision_class(rel_x, ego_box[3], v_ego, v_other, changing), CollisionClass.NONE)
    return Events(
        dynamic_collision=dynamic,
        static_collision=static,
        position_deviation=dist > p.d_max,
        heading_deviation=jnp.abs(heading_error) > p.psi_max,
        collision_ahead=ahead,
        collision_class=cls.astype(jnp.int32),
        route_distance=dist,
        heading_error=heading_error,
        route_progress=arc,
        lateral_offset=lateral,
    )


def offroad_distance(sdf_bank: jnp.ndarray, index, origin, res, ego_box: jnp.ndarray) -> jnp.ndarray:
    """Max signed distance (m) of the ego box corners to the drivable area (> 0: off-road)."""
    return jnp.max(sdf_lookup(sdf_bank, origin, res, box_corners(ego_box), index=index))
