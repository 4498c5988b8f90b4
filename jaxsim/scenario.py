"""Scenario data model: one driving log as a padded, stackable struct-of-arrays.

A `Scenario` holds one log; a `ScenarioBank` is the same dataclass with a leading
scenario axis `N` on every array (build one with `stack_scenarios`). Environments keep
the bank unbatched and index it with a per-env scenario id, so 65k envs share one copy.

Conventions: float32, SI units, world frame, yaw in radians counter-clockwise from +x.
Trajectory rows are `[x, y, yaw, speed]` (`TRAJ_DIM = 4`). Agent arrays are time-major
(`(T, A, ...)`) so that the slice an env step reads is contiguous.
"""

from __future__ import annotations

import enum

import jax.numpy as jnp
import numpy as np
from flax import struct

TRAJ_DIM = 4  # x, y, yaw, speed
BOX_DIM = 5  # x, y, yaw, length, width


class AgentType(enum.IntEnum):
    """`agent_type` codes; PAD marks an unused slot."""

    PAD = 0
    VEHICLE = 1
    PEDESTRIAN = 2
    CYCLIST = 3


class Source(enum.IntEnum):
    """`source` codes: where a scenario came from."""

    PROCEDURAL = 0
    NUSCENES = 1
    SCENARIONET = 2  # jaxsim.sources.scenarionet (nuScenes, Waymo, nuPlan, ... conversions)


class Layout(enum.IntEnum):
    """`layout` codes of procedural scenes (UNKNOWN for logs)."""

    UNKNOWN = -1
    STRAIGHT = 0
    CURVE = 1
    INTERSECTION = 2
    MERGE = 3


@struct.dataclass
class Scenario:
    """One driving log, padded to fixed sizes (T steps, A agents, L lanes, P points, S boxes).

    Reference point (the project's one convention): every pose's (x, y), the ego's and
    each agent's, is the centre of the vehicle's box. Collision boxes, the bicycle model
    (which integrates this point, RAD's simplification) and camera mounts all use it;
    importers move logged rear-axle poses forward to it (nuScenes: `ego_center_offset`).

    Fields (shapes for a single scenario; a bank adds a leading `N`):
      ego_traj:      (T, 4) expert ego trajectory [x m, y m, yaw rad, speed m/s].
      ego_valid:     (T,) bool, True for logged steps (a prefix of the T steps).
      ego_size:      (2,) ego box [length m, width m].
      ego_lane:      (T,) int32 lane index the expert occupies (-1 if none).
      agent_traj:    (T, A, 4) surrounding agents [x, y, yaw, speed].
      agent_valid:   (T, A) bool, agent observed at that step.
      agent_size:    (A, 2) [length m, width m].
      agent_type:    (A,) int32 `AgentType` code (0 = padding slot).
      lane_points:   (L, P, 2) lane centerline polylines [x, y], padded by repeating
                     the last valid point.
      lane_num_points: (L,) int32 valid points per lane (0 = unused lane slot).
      lane_width:    (L,) lane width m.
      lane_left:     (L,) int32 index of the left neighbour lane (same direction) or -1.
      lane_right:    (L,) int32 index of the right neighbour lane or -1.
      lane_succ:     (L, 3) int32 successor lane indices, -1 padded.
      sdf:           (H, W) signed distance to the drivable-area boundary in metres,
                     negative inside the drivable area. Cell (i, j) is centred at
                     `sdf_origin + (j, i) * sdf_res`.
      sdf_origin:    (2,) world [x, y] of cell (0, 0) centre.
      sdf_res:       () metres per cell.
      static_boxes:  (S, 5) static obstacles [x, y, yaw, length, width].
      static_valid:  (S,) bool.
      dt:            () seconds between log steps.
      origin:        (2,) world offset subtracted from the source coordinates (m).
      source:        () int32 `Source` code.
      layout:        () int32 `Layout` code.
      scenario_id:   () int32 id (generator seed or log index).
    """

    ego_traj: jnp.ndarray
    ego_valid: jnp.ndarray
    ego_size: jnp.ndarray
    ego_lane: jnp.ndarray
    agent_traj: jnp.ndarray
    agent_valid: jnp.ndarray
    agent_size: jnp.ndarray
    agent_type: jnp.ndarray
    lane_points: jnp.ndarray
    lane_num_points: jnp.ndarray
    lane_width: jnp.ndarray
    lane_left: jnp.ndarray
    lane_right: jnp.ndarray
    lane_succ: jnp.ndarray
    sdf: jnp.ndarray
    sdf_origin: jnp.ndarray
    sdf_res: jnp.ndarray
    static_boxes: jnp.ndarray
    static_valid: jnp.ndarray
    dt: jnp.ndarray
    origin: jnp.ndarray
    source: jnp.ndarray
    layout: jnp.ndarray
    scenario_id: jnp.ndarray

    # --- sizes (read from array shapes, work for a scenario or a bank) ---
    @property
    def num_steps(self) -> int:
        return self.ego_traj.shape[-2]

    @property
    def max_agents(self) -> int:
        return self.agent_size.shape[-2]

    @property
    def max_lanes(self) -> int:
        return self.lane_points.shape[-3]

    @property
    def lane_max_points(self) -> int:
        return self.lane_points.shape[-2]

    @property
    def num_scenarios(self) -> int:
        """Leading bank size N; raises on a single scenario."""
        if self.ego_traj.ndim != 3:
            raise ValueError("num_scenarios is defined for a bank (leading N axis), not a single Scenario")
        return self.ego_traj.shape[0]

    def __getitem__(self, index) -> "Scenario":
        """Index a bank along N: `bank[i]` is one Scenario, `bank[a:b]` a smaller bank."""
        return Scenario(**{name: getattr(self, name)[index] for name in FIELD_SPECS})


ScenarioBank = Scenario  # a Scenario whose arrays carry a leading N axis


# name -> (dtype, shape template). Letters are sizes shared across fields; ints are fixed.
FIELD_SPECS: dict[str, tuple[str, tuple]] = {
    "ego_traj": ("float32", ("T", 4)),
    "ego_valid": ("bool", ("T",)),
    "ego_size": ("float32", (2,)),
    "ego_lane": ("int32", ("T",)),
    "agent_traj": ("float32", ("T", "A", 4)),
    "agent_valid": ("bool", ("T", "A")),
    "agent_size": ("float32", ("A", 2)),
    "agent_type": ("int32", ("A",)),
    "lane_points": ("float32", ("L", "P", 2)),
    "lane_num_points": ("int32", ("L",)),
    "lane_width": ("float32", ("L",)),
    "lane_left": ("int32", ("L",)),
    "lane_right": ("int32", ("L",)),
    "lane_succ": ("int32", ("L", 3)),
    "sdf": ("float32", ("H", "W")),
    "sdf_origin": ("float32", (2,)),
    "sdf_res": ("float32", ()),
    "static_boxes": ("float32", ("S", 5)),
    "static_valid": ("bool", ("S",)),
    "dt": ("float32", ()),
    "origin": ("float32", (2,)),
    "source": ("int32", ()),
    "layout": ("int32", ()),
    "scenario_id": ("int32", ()),
}


class ScenarioFormatError(ValueError):
    """A scenario array or file does not match the documented layout."""


def validate_arrays(arrays: dict, batched: bool) -> dict[str, int]:
    """Check names, dtypes and shapes of scenario arrays; return the size letters.

    Args:
      arrays: field name -> numpy array.
      batched: True if every array carries a leading N axis.
    Raises:
      ScenarioFormatError naming the first offending field.
    """
    missing = [k for k in FIELD_SPECS if k not in arrays]
    if missing:
        raise ScenarioFormatError(f"missing field(s) {missing}; a scenario needs {list(FIELD_SPECS)}")
    unknown = [k for k in arrays if k not in FIELD_SPECS]
    if unknown:
        raise ScenarioFormatError(f"unknown field(s) {unknown}; allowed fields are {list(FIELD_SPECS)}")
    sizes: dict[str, int] = {}
    lead = None
    for name, (dtype, template) in FIELD_SPECS.items():
        arr = np.asarray(arrays[name])
        if arr.dtype != np.dtype(dtype):
            raise ScenarioFormatError(f"field '{name}' has dtype {arr.dtype}, expected {dtype}")
        shape = arr.shape
        if batched:
            if not shape:
                raise ScenarioFormatError(f"field '{name}' has no leading scenario axis")
            if lead is None:
                lead = shape[0]
            elif shape[0] != lead:
                raise ScenarioFormatError(f"field '{name}' has {shape[0]} scenarios, expected {lead}")
            shape = shape[1:]
        if len(shape) != len(template):
            raise ScenarioFormatError(f"field '{name}' has shape {arr.shape}, expected {('N',) * batched + template}")
        for got, want in zip(shape, template):
            if isinstance(want, int):
                ok = got == want
            else:
                ok = sizes.setdefault(want, got) == got
            if not ok:
                raise ScenarioFormatError(
                    f"field '{name}' has shape {arr.shape}, expected {('N',) * batched + template} with {sizes}"
                )
        if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
            where = ""
            if batched:
                bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
                where = f"scene {int(np.argmax(bad))}: "
            raise ScenarioFormatError(f"{where}field '{name}' contains NaN or inf; allowed: finite values")
    for req in ("T", "A", "L", "P"):
        if sizes.get(req, 0) < 1:
            raise ScenarioFormatError(f"size {req} must be >= 1, got {sizes.get(req)}")
    if sizes.get("P", 0) < 2:
        raise ScenarioFormatError("lane_points needs at least 2 points per lane (P >= 2)")
    return sizes


def from_numpy(arrays: dict, batched: bool) -> Scenario:
    """Validate numpy arrays and wrap them in a Scenario (or bank) of jax arrays."""
    validate_arrays(arrays, batched)
    return Scenario(**{k: jnp.asarray(np.asarray(arrays[k])) for k in FIELD_SPECS})


def to_numpy(scenario: Scenario) -> dict[str, np.ndarray]:
    return {k: np.asarray(getattr(scenario, k)) for k in FIELD_SPECS}


def stack_scenarios(scenarios: list[Scenario]) -> ScenarioBank:
    """Stack equally padded scenarios into a bank with leading axis N."""
    if not scenarios:
        raise ValueError("stack_scenarios needs at least one scenario")
    arrays = {k: np.stack([np.asarray(getattr(s, k)) for s in scenarios]) for k in FIELD_SPECS}
    return from_numpy(arrays, batched=True)
