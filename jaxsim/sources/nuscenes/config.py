"""`ImportConfig`: static, validated settings of the nuScenes importer.

Sizes default to the procedural generator's (jaxsim.procedural.GeneratorConfig), so banks
of both sources stack along N.
"""

from __future__ import annotations

import dataclasses

from jaxsim.config_utils import ConfigError, check_range
from jaxsim.procedural.config import GeneratorConfig

_G = GeneratorConfig()


@dataclasses.dataclass(frozen=True)
class ImportConfig:
    """num_steps T, dt s, max_agents A, max_lanes L, lane_points P, max_static S,
    sdf_size H = W cells of sdf_res m: the Scenario sizes (procedural defaults).
    clip_stride: log steps between the starts of consecutive clips of a scene.
    ego_size: [length, width] m of the nuScenes car (Renault Zoe).
    ego_center_offset: m from the ego_pose frame (rear axle) forward to the box centre;
      the stored ego state is the box centre, as in every Scenario.
    max_gap: s; an agent is interpolated between two annotations only if they are at
      most this far apart (keyframes are 0.5 s apart; larger gaps are occlusions).
    """

    num_steps: int = _G.num_steps
    dt: float = _G.dt
    max_agents: int = _G.max_agents
    max_lanes: int = _G.max_lanes
    lane_points: int = _G.lane_points
    max_static: int = _G.max_static
    sdf_size: int = _G.sdf_size
    sdf_res: float = _G.sdf_res
    clip_stride: int = 40
    ego_size: tuple = (4.084, 1.730)
    ego_center_offset: float = 1.4
    max_gap: float = 1.5

    def __post_init__(self):
        for name in ("num_steps", "max_agents", "max_lanes", "lane_points", "max_static", "sdf_size", "clip_stride"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ConfigError(f"'{name}' must be an int, got {v!r}")
        check_range("num_steps", self.num_steps, 2, 2000)
        check_range("dt", self.dt, 0.01, 1.0)
        check_range("max_agents", self.max_agents, 1, 256)
        check_range("max_lanes", self.max_lanes, 1, 256)
        check_range("lane_points", self.lane_points, 2, 1024)
        check_range("max_static", self.max_static, 0, 256)
        check_range("sdf_size", self.sdf_size, 16, 4096)
        check_range("sdf_res", self.sdf_res, 0.05, 10.0)
        check_range("clip_stride", self.clip_stride, 1, 100_000)
        check_range("ego_center_offset", self.ego_center_offset, -5.0, 5.0)
        check_range("max_gap", self.max_gap, 0.1, 10.0)
        if len(self.ego_size) != 2 or not all(isinstance(v, (int, float)) and 0.5 <= v <= 20 for v in self.ego_size):
            raise ConfigError(f"'ego_size' must be (length, width) in [0.5, 20] m, got {self.ego_size!r}")

    @property
    def extent(self) -> float:
        """Side of the SDF grid in metres."""
        return self.sdf_size * self.sdf_res
