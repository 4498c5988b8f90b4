"""Action spaces: RAD's decoupled discrete displacement anchors and continuous controls.

RAD's action is a target displacement of the ego over a 0.5 s horizon, in the ego
frame: lateral a_x in 61 bins over [-0.75, 0.75] m and longitudinal a_y in 61 bins
over [0, 15] m. We turn a target (a_x, a_y) into bicycle controls by the circular arc
through the origin, tangent to the heading, that ends at the target: curvature
k = 2 a_x / (a_x^2 + a_y^2), arc length s = angle / k, then the constant acceleration
that covers s in the horizon from the current speed, and steer = atan(k L). The
controls are applied for one env step and re-planned at the next (receding horizon).

The reachable-anchor mask is computed, not typed in: dense bicycle rollouts over the
horizon from speeds in [0, max_speed] with constant accelerations and steers within
the limits; an anchor is reachable when some rollout ends inside its cell.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxsim.kinematics import DynamicsParams, clip_controls


@struct.dataclass(frozen=True)
class DiscreteActionSpec:
    """Static description of RAD's anchor grid (hashable).

    An action is `[i_lat, i_lon]`, shape (2,) per env (checked when `step` is traced:
    any other shape raises `ActionError`). Integer indices outside the grid are clipped.
    A floating-point action with NaN/inf is replaced by the safe action: the centre
    lateral anchor and the first longitudinal one (no lateral offset, stop here), i.e.
    braking as hard as the limits allow with the wheels straight (`safe_action`); with
    `EnvConfig(debug=True)` the step raises instead.
    """

    num_lat: int = struct.field(pytree_node=False, default=61)
    num_lon: int = struct.field(pytree_node=False, default=61)
    lat_range: tuple = struct.field(pytree_node=False, default=(-0.75, 0.75))
    lon_range: tuple = struct.field(pytree_node=False, default=(0.0, 15.0))
    horizon: float = struct.field(pytree_node=False, default=0.5)

    def lat_values(self) -> np.ndarray:
        return np.linspace(*self.lat_range, self.num_lat, dtype=np.float32)

    def lon_values(self) -> np.ndarray:
        return np.linspace(*self.lon_range, self.num_lon, dtype=np.float32)


def displacement_to_controls(target: jnp.ndarray, speed: jnp.ndarray, horizon, p: DynamicsParams) -> jnp.ndarray:
    """Controls [accel, steer] (..., 2) that reach ego-frame target [lat, lon] (..., 2) in `horizon` s.

    Targets behind the car (lon <= 0) mean "stop here": full arc length ~ |target|.
    Result is clipped to the limits in `p`.
    """
    lat, lon = target[..., 0], target[..., 1]
    dist2 = lat * lat + lon * lon
    curvature = 2.0 * lat / jnp.maximum(dist2, 1e-6)
    # subtended angle of the arc; arc length -> chord as curvature -> 0
    angle = 2.0 * jnp.arctan2(jnp.abs(lat), jnp.maximum(lon, 1e-6))
    chord = jnp.sqrt(dist2 + 1e-12)
    arc = jnp.where(angle > 1e-4, angle / jnp.maximum(jnp.abs(curvature), 1e-9), chord)
    arc = jnp.where(lon > 0.0, arc, 0.0)
    accel = 2.0 * (arc - speed * horizon) / (horizon * horizon)
    steer = jnp.arctan(curvature * p.wheelbase)
    return clip_controls(jnp.stack([accel, steer], axis=-1), p)


def decode_discrete(action: jnp.ndarray, spec: DiscreteActionSpec) -> jnp.ndarray:
    """Anchor indices [i_lat, i_lon] (..., 2) int -> displacement [lat, lon] (..., 2) metres.

    Out-of-range indices are clipped to the grid.
    """
    i_lat = jnp.clip(action[..., 0], 0, spec.num_lat - 1)
    i_lon = jnp.clip(action[..., 1], 0, spec.num_lon - 1)
    lat = jnp.asarray(spec.lat_values())[i_lat]
    lon = jnp.asarray(spec.lon_values())[i_lon]
    return jnp.stack([lat, lon], axis=-1)


def nearest_anchor(displacement: jnp.ndarray, spec: DiscreteActionSpec) -> jnp.ndarray:
    """Inverse of `decode_discrete`: nearest anchor indices (..., 2) int32 for [lat, lon]."""
    lat_lo, lat_hi = spec.lat_range
    lon_lo, lon_hi = spec.lon_range
    i_lat = jnp.round((displacement[..., 0] - lat_lo) / (lat_hi - lat_lo) * (spec.num_lat - 1))
    i_lon = jnp.round((displacement[..., 1] - lon_lo) / (lon_hi - lon_lo) * (spec.num_lon - 1))
    return jnp.stack([jnp.clip(i_lat, 0, spec.num_lat - 1), jnp.clip(i_lon, 0, spec.num_lon - 1)], axis=-1).astype(
        jnp.int32
    )


def speed_anchor_masks(speed, spec: DiscreteActionSpec = DiscreteActionSpec(), p: DynamicsParams = DynamicsParams()):
    """Anchors the bicycle model can reach from `speed` (...,) m/s within the horizon:
    (lat_ok (..., num_lat), lon_ok (..., num_lon)) bool, one per decoupled head.

    Longitudinal: the displacement lies between full braking (to a stop) and full
    acceleration; lateral: |lat| within what the steering limit bends that farthest arc
    to (0.5 * max_curvature * arc^2). Both widened by one anchor spacing + 10% so the
    anchor nearest a reachable point always stays (expert labels, rounding).
    """
    h = spec.horizon
    v = jnp.asarray(speed, jnp.float32)[..., None]
    stop = v / p.max_decel
    lo = jnp.where(stop > h, v * h - 0.5 * p.max_decel * h * h, 0.5 * v * stop)
    hi = v * h + 0.5 * p.max_accel * h * h
    lon, lat = jnp.asarray(spec.lon_values()), jnp.asarray(spec.lat_values())
    tol_lon = 1.1 * (spec.lon_range[1] - spec.lon_range[0]) / max(spec.num_lon - 1, 1)
    tol_lat = 1.1 * (spec.lat_range[1] - spec.lat_range[0]) / max(spec.num_lat - 1, 1)
    lon_ok = (lon >= lo - tol_lon) & (lon <= hi + tol_lon)
    lat_ok = jnp.abs(lat) <= 0.5 * p.max_curvature * hi * hi + tol_lat
    return lat_ok, lon_ok


@functools.lru_cache(maxsize=8)
def reachable_mask(
    spec: DiscreteActionSpec = DiscreteActionSpec(),
    wheelbase: float = 2.765,
    max_steer: float = 0.8552,
    max_speed: float = 32.0,
    max_accel: float = 4.0,
    max_decel: float = 8.0,
    dt: float = 0.05,
) -> np.ndarray:
    """(num_lat, num_lon) bool: anchors some bicycle rollout over the horizon can end in.

    Rollouts: speeds, constant accelerations and constant steers (within the limits) on
    dense grids, integrated with the forward model at `dt`. Cached per argument set.
    """
    # Steer is sampled through the lateral offset it produces (lat ~ k s^2 / 2), so the
    # endpoints are dense in lateral displacement at every speed; a uniform steer grid
    # leaves holes between bins at high speed.
    v0 = np.linspace(0.0, max_speed, 161)
    acc = np.linspace(-max_decel, max_accel, 9)
    lat_goal = np.linspace(-1.2, 1.2, 241) * max(abs(spec.lat_range[0]), abs(spec.lat_range[1]))
    v, a, g = np.meshgrid(v0, acc, lat_goal, indexing="ij")
    v, a, g = v.ravel(), a.ravel(), g.ravel()
    arc = np.maximum(v * spec.horizon + 0.5 * a * spec.horizon**2, 1e-3)
    max_curv = np.tan(max_steer) / wheelbase
    d = np.arctan(np.clip(2.0 * g / arc**2, -max_curv, max_curv) * wheelbase)
    x = np.zeros_like(v)
    y = np.zeros_like(v)
    yaw = np.zeros_like(v)
    for _ in range(int(round(spec.horizon / dt))):
        x = x + v * np.cos(yaw) * dt
        y = y + v * np.sin(yaw) * dt
        yaw = yaw + v / wheelbase * np.tan(d) * dt
        v = np.clip(v + a * dt, 0.0, max_speed)
    lat_lo, lat_hi = spec.lat_range
    lon_lo, lon_hi = spec.lon_range
    i_lat = np.round((y - lat_lo) / (lat_hi - lat_lo) * (spec.num_lat - 1)).astype(int)
    i_lon = np.round((x - lon_lo) / (lon_hi - lon_lo) * (spec.num_lon - 1)).astype(int)
    inside = (i_lat >= 0) & (i_lat < spec.num_lat) & (i_lon >= 0) & (i_lon < spec.num_lon)
    mask = np.zeros((spec.num_lat, spec.num_lon), dtype=bool)
    mask[i_lat[inside], i_lon[inside]] = True
    return mask


@struct.dataclass(frozen=True)
class ContinuousActionSpec:
    """Continuous [accel m/s^2, steer rad], shape (2,) per env (checked when `step` is
    traced); values outside the limits are clipped. An action with any NaN/inf entry is
    replaced by the safe action [-max_decel, 0] (brake as hard as allowed, wheels
    straight; `safe_action`); with `EnvConfig(debug=True)` the step raises instead."""

    dim: int = struct.field(pytree_node=False, default=2)


def continuous_to_controls(action: jnp.ndarray, p: DynamicsParams) -> jnp.ndarray:
    return clip_controls(action, p)


def normalized_to_controls(action: jnp.ndarray, p: DynamicsParams) -> jnp.ndarray:
    """[-1, 1]^2 -> controls: accel scaled by max_accel (>0) or max_decel (<0), steer by max_steer."""
    a = jnp.clip(action, -1.0, 1.0)
    accel = jnp.where(a[..., 0] >= 0, a[..., 0] * p.max_accel, a[..., 0] * p.max_decel)
    return jnp.stack([accel, a[..., 1] * p.max_steer], axis=-1)


class ActionError(ValueError):
    """An action of the wrong shape for the env's action space."""


def check_action_shape(action, space: str) -> None:
    """Trace-time check that one env's action has shape (2,) (static: costs nothing under jit)."""
    shape = jnp.shape(action)
    if shape != (2,):
        what = "[i_lat, i_lon] anchor indices" if space == "discrete" else "[accel m/s^2, steer rad]"
        raise ActionError(f"action has shape {shape}; the {space} action space takes shape (2,): {what} per env "
                          f"(batch envs with jaxsim.wrappers.VmapWrapper, which adds a leading axis)")  # fmt: skip


def safe_action(action, space: str, spec: DiscreteActionSpec, p: DynamicsParams):
    """`action` with a non-finite one replaced by the documented safe action (see the specs).

    Integer actions cannot be NaN and pass through unchanged.
    """
    action = jnp.asarray(action)
    if not jnp.issubdtype(action.dtype, jnp.floating):
        return action
    if space == "discrete":
        safe = jnp.asarray([spec.num_lat // 2, 0], action.dtype)
    else:
        safe = jnp.stack([-jnp.asarray(p.max_decel, action.dtype), jnp.zeros((), action.dtype)])
    return jnp.where(jnp.all(jnp.isfinite(action)), action, safe)
