"""nuScenes logs -> ScenarioBank: load tables and maps, resample scenes, cut clips, stack.

    from jaxsim.sources.nuscenes import import_nuscenes
    bank, summary = import_nuscenes("/data/nuscenes", "v1.0-mini", max_scenes=2)

Scenes are taken in name order; scenario_id is the clip's index in the bank, and
summary["clips"][i] names its scene and first step. Scenes too short for one clip are
listed in summary["skipped"].
"""

from __future__ import annotations

import numpy as np

from jaxsim.scenario import FIELD_SPECS, Scenario, from_numpy
from jaxsim.sources.nuscenes.clips import clip_starts, make_clip
from jaxsim.sources.nuscenes.config import ImportConfig
from jaxsim.sources.nuscenes.maps import load_map
from jaxsim.sources.nuscenes.tables import load_tables
from jaxsim.sources.nuscenes.timeline import build_scene_log, sample_index


def import_arrays(
    dataroot: str,
    version: str = "v1.0-mini",
    config: ImportConfig = ImportConfig(),
    max_scenes: int | None = None,
    use_devkit: bool = False,
) -> tuple[dict, dict]:
    """Numpy bank arrays (leading N = clips) and a summary dict; see `import_nuscenes`."""
    if max_scenes is not None and (not isinstance(max_scenes, (int, np.integer)) or max_scenes < 1):
        raise ValueError(f"max_scenes must be a positive int or None, got {max_scenes!r}")
    tables = load_tables(dataroot, version, use_devkit=use_devkit)
    index = sample_index(tables)
    scenes = sorted(tables.scene.values(), key=lambda s: s["name"])[:max_scenes]
    maps, clips, stats, skipped = {}, [], [], []
    for scene in scenes:
        log = build_scene_log(tables, scene, index, config.dt, config.ego_center_offset, config.max_gap)
        starts = clip_starts(log.num_steps, config)
        if not starts:
            skipped.append(
                dict(
                    scene=log.name,
                    reason=f"{(log.num_steps - 1) * config.dt:.1f} s of log is shorter "
                    f"than one clip ({config.num_steps * config.dt:.1f} s)",
                )
            )
            continue
        if log.location not in maps:
            maps[log.location] = load_map(dataroot, log.location, use_devkit=use_devkit)
        for start in starts:
            arrays, st = make_clip(log, start, maps[log.location], config, len(clips))
            clips.append(arrays)
            stats.append(st)
    if not clips:
        raise ValueError(
            f"no clip of {config.num_steps} steps fits in the {len(scenes)} scene(s) of {version} "
            f"under {dataroot}: {skipped}"
        )
    arrays = {k: np.stack([c[k] for c in clips]) for k in FIELD_SPECS}
    drift = np.array([s["drift_max"] for s in stats])
    summary = dict(
        dataroot=dataroot,
        version=version,
        scenes=len(scenes),
        num_clips=len(clips),
        maps={
            loc: dict(version=m.version, lanes=len(m.lanes), skipped_lanes=m.skipped_lanes) for loc, m in maps.items()
        },
        drift_max_m=float(drift.max()),
        drift_median_m=float(np.median(drift)),
        yaw_dev_max_deg=float(np.degrees(max(s["yaw_dev_max"] for s in stats))),
        clipped_steps=int(sum(s["clipped_steps"] for s in stats)),
        agents_per_clip=float(np.mean([s["agents"] for s in stats])),
        overlap_steps=int(sum(s["overlap_steps"] for s in stats)),
        clips=stats,
        skipped=skipped,
    )
    return arrays, summary


def import_nuscenes(
    dataroot: str,
    version: str = "v1.0-mini",
    config: ImportConfig = ImportConfig(),
    max_scenes: int | None = None,
    use_devkit: bool = False,
) -> tuple[Scenario, dict]:
    """ScenarioBank of every clip of the first `max_scenes` scenes (all if None).

    Args:
      dataroot: folder holding `<version>/*.json` and `maps/expansion/<location>.json`.
      version: table folder name, e.g. "v1.0-mini" or "v1.0-trainval".
      config: sizes (procedural defaults, so banks stack), clip stride, ego box.
      use_devkit: read tables and maps through nuscenes-devkit (must be importable).
    Returns:
      (bank, summary): summary has per-clip stats (ego drift of the bicycle
      re-integration in m, agents, lanes, ...) and their aggregates.
    Raises:
      FileNotFoundError naming a missing folder, table or map file; ValueError naming a
      malformed table/record.
    """
    arrays, summary = import_arrays(dataroot, version, config, max_scenes, use_devkit)
    return from_numpy(arrays, batched=True), summary
