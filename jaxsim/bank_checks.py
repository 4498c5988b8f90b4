"""Physical-sense checks for scenario banks, run when a bank file is loaded.

`jaxsim.scenario.validate_arrays` checks the layout (names, dtypes, shapes, finite
floats); this module checks that the numbers describe a drivable scene, so a damaged or
hand-edited bank fails on load instead of giving NaN metrics later. Every error names
the scene index, the field and the allowed values. The bounds:

  dt               (0, MAX_DT] s
  sdf_res          (0, MAX_SDF_RES] m per cell
  ego_valid        at least one valid step per scene
  sizes            ego_size, used agents' agent_size (ever valid or typed), valid static
                   box sizes and used lanes' lane_width in (0, MAX_SIZE] m (padding
                   slots may hold 0)
  speeds           ego/agent speeds (column 3 of *_traj) in [0, MAX_SPEED] m/s
  coordinates      every x, y of ego_traj, agent_traj, lane_points, static_boxes and
                   sdf_origin within [-COORD_LIMIT, COORD_LIMIT] m (scene frame, after
                   `origin` is subtracted; `origin` itself only has to be finite)
  lane indices     ego_lane, lane_left, lane_right, lane_succ in [-1, L)
  lane_num_points  in [0, P]
  codes            agent_type, source, layout: values of their enums
"""

from __future__ import annotations

import numpy as np

from jaxsim.scenario import AgentType, Layout, ScenarioFormatError, Source

MAX_DT = 10.0
MAX_SDF_RES = 100.0
MAX_SIZE = 100.0
MAX_SPEED = 150.0
COORD_LIMIT = 1.0e5


def _fail(mask_per_scene: np.ndarray, field: str, values: np.ndarray, allowed: str) -> None:
    """Raise for the first scene where `mask_per_scene` (N, ...) is True anywhere."""
    bad = np.asarray(mask_per_scene).reshape(mask_per_scene.shape[0], -1).any(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        vals = np.asarray(values)[i][np.asarray(mask_per_scene)[i]]
        example = np.asarray(vals.reshape(-1)[0] if vals.size else np.asarray(values)[i])
        shown = f"{float(example):.7g}" if np.issubdtype(example.dtype, np.floating) else repr(example.tolist())
        raise ScenarioFormatError(
            f"scene {i}: field '{field}' has value {shown}; allowed: {allowed}"
            + (f" ({int(bad.sum())} scene(s) affected)" if bad.sum() > 1 else "")
        )


def _range(x, lo, hi, lo_open=False):
    below = (x <= lo) if lo_open else (x < lo)
    return below | (x > hi)


def check_bank_physics(a: dict) -> None:
    """Raise ScenarioFormatError for the first physically impossible value of a bank.

    Args:
      a: field name -> numpy array with a leading scene axis N (layout already valid).
    """
    if a["dt"].shape[0] < 1:
        raise ScenarioFormatError("the bank holds no scenes; allowed: at least 1 scene")
    L = a["lane_points"].shape[1]
    P = a["lane_points"].shape[2]
    _fail(_range(a["dt"], 0.0, MAX_DT, lo_open=True), "dt", a["dt"], f"(0, {MAX_DT}] s")
    _fail(_range(a["sdf_res"], 0.0, MAX_SDF_RES, lo_open=True), "sdf_res", a["sdf_res"], f"(0, {MAX_SDF_RES}] m")
    _fail(~a["ego_valid"].any(axis=1), "ego_valid", a["ego_valid"].sum(axis=1), "at least one valid (True) step")

    _fail(_range(a["ego_size"], 0.0, MAX_SIZE, lo_open=True), "ego_size", a["ego_size"], f"(0, {MAX_SIZE}] m")
    used_agent = ((a["agent_type"] != AgentType.PAD) | a["agent_valid"].any(axis=1))[..., None]
    _fail(used_agent & _range(a["agent_size"], 0.0, MAX_SIZE, lo_open=True), "agent_size", a["agent_size"],
          f"(0, {MAX_SIZE}] m for agents that are ever valid or have agent_type != PAD")  # fmt: skip
    sizes = a["static_boxes"][..., 3:5]
    _fail(a["static_valid"][..., None] & _range(sizes, 0.0, MAX_SIZE, lo_open=True), "static_boxes[..., 3:5] (length, width)",
          sizes, f"(0, {MAX_SIZE}] m for valid static boxes")  # fmt: skip
    used_lane = a["lane_num_points"] > 0
    _fail(used_lane & _range(a["lane_width"], 0.0, MAX_SIZE, lo_open=True), "lane_width", a["lane_width"],
          f"(0, {MAX_SIZE}] m for lanes with lane_num_points > 0")  # fmt: skip

    for name, valid in (("ego_traj", a["ego_valid"]), ("agent_traj", a["agent_valid"])):
        speed = a[name][..., 3]
        _fail(
            valid & _range(speed, 0.0, MAX_SPEED),
            f"{name}[..., 3] (speed)",
            speed,
            f"[0, {MAX_SPEED}] m/s at valid steps",
        )

    for name, xy in (("ego_traj", a["ego_traj"][..., :2]), ("agent_traj", a["agent_traj"][..., :2]),
                     ("lane_points", a["lane_points"]), ("static_boxes", a["static_boxes"][..., :2]),
                     ("sdf_origin", a["sdf_origin"])):  # fmt: skip
        _fail(np.abs(xy) > COORD_LIMIT, f"{name} (x, y)", xy, f"[-{COORD_LIMIT:g}, {COORD_LIMIT:g}] m")

    for name in ("ego_lane", "lane_left", "lane_right", "lane_succ"):
        _fail(_range(a[name], -1, L - 1), name, a[name], f"-1 (none) or a lane index in [0, {L - 1}]")
    _fail(_range(a["lane_num_points"], 0, P), "lane_num_points", a["lane_num_points"], f"[0, {P}]")

    for name, enum in (("agent_type", AgentType), ("source", Source), ("layout", Layout)):
        codes = np.array([int(e) for e in enum])
        _fail(
            ~np.isin(a[name], codes),
            name,
            a[name],
            f"codes {sorted(codes.tolist())} ({', '.join(e.name for e in enum)})",
        )
