"""CTG configuration, cousin family codes and rejection reason codes.

`CTGConfig` is static (hashable; changing it recompiles). Vehicle limits are not here:
the feasibility check reads them from `EnvParams.dynamics` (`DynamicsParams`), so every
env may carry its own. Times are seconds, distances metres, speeds m/s.
"""

from __future__ import annotations

import dataclasses
import enum

from jaxsim.config_utils import ConfigError, check_range


class Lateral(enum.IntEnum):
    """Lateral family of a cousin: `Cousins.lateral`."""

    NONE = 0  # follow the base path
    OFFSET = 1  # quintic shift to a constant offset inside the lane
    LANE_LEFT = 2  # quintic lane change onto the left neighbour's centerline
    LANE_RIGHT = 3


class Speed(enum.IntEnum):
    """Speed-profile family of a cousin: `Cousins.speed`."""

    LOG = 0  # the expert's logged speeds
    SLOWER = 1  # smooth ramp to a fraction of the logged speed
    FASTER = 2
    STOP_GO = 3  # smooth stop, dwell, smooth restart


class RejectReason(enum.IntFlag):
    """Rejection bits of `Cousins.reasons` (0 = accepted). Several may be set."""

    OK = 0
    NONFINITE = 1  # NaN/inf anywhere
    NO_LANE = 2  # the requested neighbour lane / alternative successor does not exist
    CURVATURE = 4  # |steer| > max_steer (curvature above tan(max_steer) / wheelbase)
    LAT_ACCEL = 8  # v^2 * curvature > max_lat_accel
    ACCEL = 16  # accel > max_accel or < -max_decel
    SPEED = 32  # speed > max_speed
    JERK = 64  # longitudinal or lateral jerk > max_jerk
    OFFROAD = 128  # an ego box corner outside the drivable area (SDF > margin)
    COLLISION = 256  # ego box overlaps a logged agent or a static obstacle


# Order in which `primary_reason` reports the first set bit.
REASON_PRIORITY = (
    RejectReason.NONFINITE, RejectReason.NO_LANE, RejectReason.CURVATURE, RejectReason.LAT_ACCEL, RejectReason.ACCEL,
    RejectReason.SPEED, RejectReason.JERK, RejectReason.OFFROAD, RejectReason.COLLISION,
)  # fmt: skip


def reason_names(bits: int) -> list[str]:
    """Names of the set bits of a reason code, e.g. ['CURVATURE', 'OFFROAD']."""
    return [r.name for r in REASON_PRIORITY if int(bits) & int(r)]


def _check_interval(name: str, value, lo: float, hi: float) -> None:
    if not (isinstance(value, tuple) and len(value) == 2):
        raise ConfigError(f"'{name}' must be a pair (low, high), got {value!r}")
    check_range(f"{name}[0]", value[0], lo, hi)
    check_range(f"{name}[1]", value[1], lo, hi)
    if value[0] > value[1]:
        raise ConfigError(f"'{name}' is {value!r}; low must be <= high")


def _check_weights(name: str, value, n: int) -> None:
    if not (isinstance(value, tuple) and len(value) == n):
        raise ConfigError(f"'{name}' must be a tuple of {n} non-negative weights, got {value!r}")
    for i, w in enumerate(value):
        check_range(f"{name}[{i}]", w, 0.0, None)
    if sum(value) <= 0:
        raise ConfigError(f"'{name}' is {value!r}; at least one weight must be > 0")


@dataclasses.dataclass(frozen=True)
class CTGConfig:
    """Cousin Trajectory Generator settings.

    num_cousins: K cousins per env.
    include_expert: cousin 0 is the expert itself (base path and logged speeds, re-timed
      through the same pipeline, so it is exactly bicycle-consistent).
    path_points, path_spacing: the base paths are resampled to `path_points` points every
      `path_spacing` m (must cover the distance driven in T steps at the fastest cousin).
    chain_lanes: lanes followed along the lane graph to extend the log beyond its end.
    smooth_window: moving-average width (samples, odd) that removes polyline corners.
    speed_smooth_window: moving-average width (steps, odd) applied to the logged speeds
      before the speed profiles, so jerky logs do not make every cousin infeasible.
    lateral_weights: sampling weights of (NONE, OFFSET, LANE_LEFT, LANE_RIGHT); families
      that do not exist in a scene (no neighbour lane) get weight 0.
    speed_weights: sampling weights of (LOG, SLOWER, FASTER, STOP_GO).
    turn_prob: probability of taking an alternative successor lane when one exists.
    offset_min, offset_margin: lateral offsets are |l| >= offset_min and keep the ego box
      `offset_margin` m inside its lane.
    maneuver_start: when lateral manoeuvres start (s, scaled by the reference speed).
    lane_change_time, offset_time: duration of the quintic lateral blend (s).
    slower_factor, faster_factor: speed multipliers; speed_ramp_time: ramp duration.
    stop_decel, go_accel, stop_dwell: stop-and-go shape (m/s^2, m/s^2, s).
    comfort_accel, comfort_jerk: ramps are lengthened until their peak acceleration and
      jerk are below these (m/s^2, m/s^3), so most samples pass the check.
    min_ref_speed: floor on the speed that converts manoeuvre times into distances.
    check_agents: reject cousins whose ego box overlaps a logged agent or static box.
    offroad_margin: SDF (m) tolerated outside the drivable area.
    limit_slack: relative slack on the dynamic limits (float32 round-off).
    extra_steps: states generated beyond the T log steps (labels look ahead 0.5 s).
    """

    num_cousins: int = 8
    include_expert: bool = False
    path_points: int = 320
    path_spacing: float = 1.0
    chain_lanes: int = 4
    smooth_window: int = 5
    speed_smooth_window: int = 5
    lateral_weights: tuple = (0.5, 1.0, 1.5, 1.5)
    speed_weights: tuple = (1.0, 1.0, 1.0, 1.0)
    turn_prob: float = 0.5
    offset_min: float = 0.3
    offset_margin: float = 0.15
    maneuver_start: tuple = (0.5, 2.5)
    lane_change_time: tuple = (3.5, 6.0)
    offset_time: tuple = (2.0, 4.0)
    slower_factor: tuple = (0.4, 0.85)
    faster_factor: tuple = (1.15, 1.6)
    speed_ramp_time: tuple = (1.5, 4.0)
    stop_decel: tuple = (1.5, 3.5)
    go_accel: tuple = (1.0, 2.5)
    stop_dwell: tuple = (0.5, 2.0)
    comfort_accel: float = 3.0
    comfort_jerk: float = 5.0
    min_ref_speed: float = 2.0
    check_agents: bool = True
    offroad_margin: float = 0.0
    limit_slack: float = 1e-3
    extra_steps: int = 10

    def __post_init__(self):
        check_range("num_cousins", self.num_cousins, 1, 4096)
        if not isinstance(self.include_expert, bool):
            raise ConfigError(f"'include_expert' must be true or false, got {self.include_expert!r}")
        if not isinstance(self.check_agents, bool):
            raise ConfigError(f"'check_agents' must be true or false, got {self.check_agents!r}")
        check_range("path_points", self.path_points, 8, 100_000)
        check_range("path_spacing", self.path_spacing, 0.05, 20.0)
        check_range("chain_lanes", self.chain_lanes, 1, 32)
        check_range("smooth_window", self.smooth_window, 1, 101)
        check_range("speed_smooth_window", self.speed_smooth_window, 1, 101)
        for name in ("smooth_window", "speed_smooth_window"):
            if getattr(self, name) % 2 == 0:
                raise ConfigError(f"'{name}' is {getattr(self, name)}; it must be odd")
        _check_weights("lateral_weights", self.lateral_weights, len(Lateral))
        _check_weights("speed_weights", self.speed_weights, len(Speed))
        check_range("turn_prob", self.turn_prob, 0.0, 1.0)
        check_range("offset_min", self.offset_min, 0.0, 5.0)
        check_range("offset_margin", self.offset_margin, 0.0, 5.0)
        _check_interval("maneuver_start", self.maneuver_start, 0.0, 60.0)
        _check_interval("lane_change_time", self.lane_change_time, 0.5, 60.0)
        _check_interval("offset_time", self.offset_time, 0.5, 60.0)
        _check_interval("slower_factor", self.slower_factor, 0.0, 1.0)
        _check_interval("faster_factor", self.faster_factor, 1.0, 5.0)
        _check_interval("speed_ramp_time", self.speed_ramp_time, 0.1, 60.0)
        _check_interval("stop_decel", self.stop_decel, 0.1, 20.0)
        _check_interval("go_accel", self.go_accel, 0.1, 20.0)
        _check_interval("stop_dwell", self.stop_dwell, 0.0, 60.0)
        check_range("comfort_accel", self.comfort_accel, 0.1, 20.0)
        check_range("comfort_jerk", self.comfort_jerk, 0.1, 100.0)
        check_range("min_ref_speed", self.min_ref_speed, 0.1, 50.0)
        check_range("offroad_margin", self.offroad_margin, -5.0, 5.0)
        check_range("limit_slack", self.limit_slack, 0.0, 0.5)
        check_range("extra_steps", self.extra_steps, 1, 1000)
