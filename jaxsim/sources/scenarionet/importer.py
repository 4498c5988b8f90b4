"""ScenarioNet scenario descriptions (files or folders of `*.pkl`) -> ScenarioBank arrays.

    from jaxsim.sources.scenarionet import import_scenarionet
    bank, report = import_scenarionet(["../shared/data/nuscenes_mini_scenarionet"])

Files are taken in sorted path order (folders: their `*.pkl` files, ScenarioNet's
`dataset_summary.pkl` / `dataset_mapping.pkl` index files skipped); scenario_id is the
clip's index in the bank. A scene that cannot be used (unreadable or unsafe pickle,
schema error, no valid SDC step, shorter than one clip, other sample rate) is skipped
with the reason in `report["skipped"]`; the rest goes on. Per scene the report lists its
clips, ego drift of the bicycle re-integration against the (smoothed) log, and the share
of ego steps with the whole box on the drivable area and in a lane.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import pickle

import numpy as np

from jaxsim.geometry import box_corners, sdf_lookup
from jaxsim.procedural.rasterize import grid_origin
from jaxsim.scenario import FIELD_SPECS, Scenario, Source, from_numpy
from jaxsim.sources.nuscenes.clips import clip_starts, make_clip
from jaxsim.sources.nuscenes.config import ImportConfig
from jaxsim.sources.nuscenes.lanes import candidate_lanes
from jaxsim.sources.scenarionet.convert import file_neighbours, map_data, neighbour_table, scene_log
from jaxsim.sources.scenarionet.schema import ScenarioNetFormatError, validate
from jaxsim.sources.scenarionet.unpickle import safe_load

INDEX_FILES = ("dataset_summary.pkl", "dataset_mapping.pkl")
SPARE_SLOTS = 2  # agent slots left unused so DAA can spawn an adversary (busy real scenes fill all A)


def find_files(inputs) -> list[str]:
    """Sorted scene files of `inputs` (files or folders); FileNotFoundError naming a missing one."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out = []
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            found = [
                p
                for p in glob.glob(os.path.join(item, "**", "*.pkl"), recursive=True)
                if os.path.basename(p) not in INDEX_FILES
            ]
            if not found:
                raise FileNotFoundError(f"no scenario files (*.pkl) under folder {item}")
            out.extend(found)
        elif os.path.isfile(item):
            out.append(item)
        else:
            raise FileNotFoundError(f"scenario input not found: {item} (give .pkl files or folders of them)")
    return sorted(dict.fromkeys(out))


def _on_road(arrays: dict) -> tuple[float, float]:
    """Shares of ego steps with all four box corners on the drivable area, and in a lane."""
    ego = arrays["ego_traj"]
    box = np.concatenate([ego[:, :3], np.broadcast_to(arrays["ego_size"], (len(ego), 2))], -1)
    d = np.asarray(sdf_lookup(arrays["sdf"], arrays["sdf_origin"], arrays["sdf_res"], box_corners(box)))
    return float(np.mean(d.max(-1) <= 0.0)), float(np.mean(arrays["ego_lane"] >= 0))


def _pad_agents(arrays: dict, A: int) -> dict:
    """Agent fields padded from the clip's A' < A slots to A (PAD type, never valid)."""
    pad = A - arrays["agent_size"].shape[0]
    if pad <= 0:
        return arrays
    widths = {
        "agent_traj": ((0, 0), (0, pad), (0, 0)),
        "agent_valid": ((0, 0), (0, pad)),
        "agent_size": ((0, pad), (0, 0)),
        "agent_type": ((0, pad),),
    }
    return dict(arrays, **{k: np.pad(arrays[k], w) for k, w in widths.items()})


def _apply_file_neighbours(arrays: dict, mp, table: dict, config: ImportConfig) -> bool:
    """Replace the geometric lane_left/right of a clip by the file's neighbour lists. The
    clip's lanes are found again exactly as `make_clip` chose them (same inputs)."""
    ego = arrays["ego_traj"].astype(float)
    grid0 = grid_origin(ego[:, :2], config.sdf_size, config.sdf_res)
    window = np.concatenate([grid0, grid0 + (config.sdf_size - 1) * config.sdf_res])
    chosen = candidate_lanes(mp, arrays["origin"].astype(float), window, ego[:, :2])[: config.max_lanes]
    lines = [arrays["lane_points"][k, : arrays["lane_num_points"][k]].astype(float) for k in range(len(chosen))]
    same = len(chosen) == int((arrays["lane_num_points"] > 0).sum()) and all(
        np.hypot(*(ln["xy"][0] - line[0])) < 1e-2 for ln, line in zip(chosen, lines)
    )
    if not same:  # cannot happen with equal inputs; keep the geometric links rather than guess
        return False
    left, right = file_neighbours([ln["token"] for ln in chosen], lines, table, config.max_lanes)
    arrays["lane_left"], arrays["lane_right"] = left, right
    return True


def _scene(path: str, config: ImportConfig, first_id: int, spare_slots: int = 0):
    """(clips [(arrays, stats)], scene report) of one file; raises on a bad file."""
    sd = safe_load(path)
    info = validate(sd, path)
    if abs(info["dt"] - config.dt) > 1e-6:
        raise ScenarioNetFormatError(
            f"{path}: metadata.sample_rate: {info['dt']} s per step, the bank uses "
            f"{config.dt} s (resampling is not supported)"
        )
    offset = config.ego_center_offset if info["dataset"].lower().startswith("nuscenes") else 0.0
    log, log_stats = scene_log(sd, info, config.dt, offset)
    starts = clip_starts(log.num_steps, config)
    report = dict(file=path, scene=info["name"], dataset=info["dataset"], location=info["location"], **log_stats)
    if not starts:
        return [], dict(
            report,
            reason=f"{(log.num_steps - 1) * config.dt:.1f} s of valid ego log is shorter than "
            f"one clip ({config.num_steps * config.dt:.1f} s)",
        )
    mp = map_data(sd, info)
    clip_cfg = dataclasses.replace(config, max_agents=max(1, config.max_agents - spare_slots))
    table = neighbour_table(sd)
    clips = []
    for k, start in enumerate(starts):
        arrays, st = make_clip(log, start, mp, clip_cfg, first_id + k)
        arrays = _pad_agents(arrays, config.max_agents)
        st["lane_neighbours"] = "geometry"
        if table is not None and _apply_file_neighbours(arrays, mp, table, config):
            st["lane_neighbours"] = "file"
        arrays["source"] = np.int32(Source.SCENARIONET)
        st["on_drivable"], st["in_lane"] = _on_road(arrays)
        clips.append((arrays, st))
    report.update(
        clips=len(clips),
        lanes=len(mp.lanes),
        skipped_lanes=mp.skipped_lanes,
        lane_neighbours="file" if table is not None else "geometry",
        drift_max_m=max(s["drift_max"] for _, s in clips),
        on_drivable=float(np.mean([s["on_drivable"] for _, s in clips])),
        in_lane=float(np.mean([s["in_lane"] for _, s in clips])),
        agents_per_clip=float(np.mean([s["agents"] for _, s in clips])),
    )
    return clips, report


def import_arrays(
    inputs, config: ImportConfig = ImportConfig(), progress=None, spare_slots: int = SPARE_SLOTS
) -> tuple[dict, dict]:
    """Numpy bank arrays (leading N = clips) and the report; see `import_scenarionet`.

    progress: optional callable(done, total, path) after each file.
    """
    if not isinstance(spare_slots, int) or not 0 <= spare_slots < config.max_agents:
        raise ValueError(f"spare_slots must be an int in [0, {config.max_agents - 1}], got {spare_slots!r}")
    files = find_files(inputs)
    clips, scenes, skipped = [], [], []
    for n, path in enumerate(files):
        try:
            got, report = _scene(path, config, len(clips), spare_slots)
        except (
            ScenarioNetFormatError,
            pickle.UnpicklingError,
            OSError,
            ValueError,
            KeyError,
            TypeError,
            IndexError,
        ) as err:  # a bad file is reported and skipped; the rest goes on
            got, report = [], dict(file=path, reason=f"{type(err).__name__}: {err}")
        if got:
            clips.extend(got)
            scenes.append(report)
        else:
            skipped.append(report)
        if progress is not None:
            progress(n + 1, len(files), path)
    if not clips:
        raise ValueError(
            f"no clip of {config.num_steps} steps could be imported from {len(files)} file(s): "
            + "; ".join(f"{s['file']}: {s['reason']}" for s in skipped)
        )
    arrays = {k: np.stack([c[k] for c, _ in clips]) for k in FIELD_SPECS}
    stats = [s for _, s in clips]
    drift = np.array([s["drift_max"] for s in stats])
    summary = dict(
        files=len(files),
        scenes=len(scenes),
        num_clips=len(clips),
        scene_reports=scenes,
        skipped=skipped,
        drift_max_m=float(drift.max()),
        drift_median_m=float(np.median(drift)),
        yaw_dev_max_deg=float(np.degrees(max(s["yaw_dev_max"] for s in stats))),
        clipped_steps=int(sum(s["clipped_steps"] for s in stats)),
        agents_per_clip=float(np.mean([s["agents"] for s in stats])),
        on_drivable=float(np.mean([s["on_drivable"] for s in stats])),
        in_lane=float(np.mean([s["in_lane"] for s in stats])),
        overlap_steps=int(sum(s["overlap_steps"] for s in stats)),
        clips=stats,
        config=dataclasses.asdict(config),
        spare_slots=spare_slots,
    )
    return arrays, summary


def import_scenarionet(
    inputs, config: ImportConfig = ImportConfig(), progress=None, spare_slots: int = SPARE_SLOTS
) -> tuple[Scenario, dict]:
    """ScenarioBank of every clip of the scenario descriptions in `inputs`.

    Args:
      inputs: a path or a list of paths: `.pkl` scene files or folders holding them.
      config: sizes (procedural defaults, so banks stack), clip stride, ego box and the
        nuScenes rear-axle -> box-centre offset (`ImportConfig`, shared with nuScenes).
      spare_slots: agent slots kept free (the nearest A - spare_slots tracks are kept):
        DAA spawns an adversary into a free slot when no logged vehicle qualifies, and
        the busy real scenes would otherwise fill every slot.
    Returns:
      (bank, report): report["scene_reports"] per imported scene, report["skipped"] per
      skipped file with its reason, report["clips"] per clip, and aggregates.
    Raises:
      FileNotFoundError for a missing input; ValueError if no clip at all could be made.
    """
    arrays, summary = import_arrays(inputs, config, progress, spare_slots)
    return from_numpy(arrays, batched=True), summary
