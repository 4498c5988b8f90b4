"""`GeneratorConfig`: the static, validated settings of the procedural scenario source."""

from __future__ import annotations

import dataclasses

from jaxsim.config_utils import ConfigError, check_range

# Order of `layout_weights`: Layout.STRAIGHT, CURVE, INTERSECTION, MERGE.
LAYOUT_NAMES = ("straight", "curve", "intersection", "merge")
SDF_MARGIN = 12.0  # m of SDF grid kept around the ego path on each side


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """Sizes and sampling ranges of generated scenarios (hashable; SI units).

    num_steps: T log steps, dt: s between steps (T=81, dt=0.1 is an 8 s log).
    max_agents: A agent slots, max_lanes: L lane slots (>= 20 so a four-way
      intersection fits), lane_points: P points per lane polyline, max_static: S boxes.
    sdf_size: H = W cells of the drivable-area SDF, sdf_res: m per cell.
    layout_weights: relative frequency of (straight, curve, intersection, merge).
    ego_speed: (lo, hi) m/s range of the expert's desired speed.
    traffic_density: multiplies the expected number of cars per lane.
    sensor_range: m; agents farther than this from the ego are not observed.
    """

    num_steps: int = 81
    dt: float = 0.1
    max_agents: int = 32
    max_lanes: int = 32
    lane_points: int = 48
    max_static: int = 8
    sdf_size: int = 160
    sdf_res: float = 1.0
    layout_weights: tuple = (1.0, 1.0, 1.0, 1.0)
    ego_speed: tuple = (5.0, 17.0)
    traffic_density: float = 1.0
    sensor_range: float = 80.0

    def __post_init__(self):
        for name in ("num_steps", "max_agents", "max_lanes", "lane_points", "max_static", "sdf_size"):
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool):
                raise ConfigError(f"'{name}' must be an int, got {getattr(self, name)!r}")
        check_range("num_steps", self.num_steps, 2, 2000)
        check_range("dt", self.dt, 0.01, 1.0)
        check_range("max_agents", self.max_agents, 1, 256)
        check_range("max_lanes", self.max_lanes, 20, 256)
        check_range("lane_points", self.lane_points, 16, 1024)
        check_range("max_static", self.max_static, 0, 256)
        check_range("sdf_size", self.sdf_size, 16, 4096)
        check_range("sdf_res", self.sdf_res, 0.05, 10.0)
        check_range("traffic_density", self.traffic_density, 0.0, 5.0)
        check_range("sensor_range", self.sensor_range, 5.0, 1000.0)
        if len(self.layout_weights) != 4 or any(not isinstance(w, (int, float)) or w < 0 for w in self.layout_weights):
            raise ConfigError(
                f"'layout_weights' must be 4 non-negative numbers for {LAYOUT_NAMES}, got {self.layout_weights!r}"
            )
        if sum(self.layout_weights) <= 0:
            raise ConfigError(f"'layout_weights' must not all be zero (order {LAYOUT_NAMES})")
        if len(self.ego_speed) != 2 or not 1.0 <= self.ego_speed[0] <= self.ego_speed[1] <= 30.0:
            raise ConfigError(f"'ego_speed' must be (lo, hi) with 1 <= lo <= hi <= 30 m/s, got {self.ego_speed!r}")
        # the grid must hold the whole expert path (at most hi * duration long) plus margins
        need = self.ego_speed[1] * (self.num_steps - 1) * self.dt + 2 * SDF_MARGIN
        if self.sdf_size * self.sdf_res < need:
            raise ConfigError(
                f"'sdf_size' * 'sdf_res' is {self.sdf_size * self.sdf_res:g} m but the ego path needs {need:g} m "
                f"(ego_speed hi {self.ego_speed[1]} m/s over {(self.num_steps - 1) * self.dt:g} s + margins): "
                "raise sdf_size/sdf_res or lower ego_speed"
            )

    @property
    def duration(self) -> float:
        """Seconds covered by the log."""
        return (self.num_steps - 1) * self.dt
