"""A procedural 3DGS world built from any jaxsim `Scenario`, so every bank is renderable
with no download: asphalt where the SDF says drivable, curbs and sidewalks along its
boundary, grass beyond, lane markings from the lane graph (dashed between same-direction
neighbours, solid at the edges), static obstacles as orange barriers, buildings off the
road, a far ground ring to the horizon, and one coloured vehicle / pedestrian / cyclist
template per actor slot. The sky is an environment map (`render_bridge.sky`).

    cfg = WorldConfig(target_gaussians=200_000)
    scene_bank = build_scene_bank(bank, cfg, device="cuda")
"""

from __future__ import annotations

import dataclasses
import functools
import zlib

import numpy as np

from jaxsim.config_utils import check_range
from jaxsim.scenario import FIELD_SPECS, AgentType
from render_bridge import world_parts as wp

ROAD, CURB, SIDEWALK, GRASS = (0.30, 0.30, 0.32), (0.80, 0.80, 0.77), (0.63, 0.61, 0.57), (0.30, 0.46, 0.22)
MARKING, BARRIER, GLASS, TYRE = (0.93, 0.93, 0.90), (0.90, 0.40, 0.08), (0.12, 0.16, 0.22), (0.05, 0.05, 0.05)
BODY_PALETTE = np.array([[0.75, 0.10, 0.10], [0.10, 0.25, 0.70], [0.15, 0.15, 0.17], [0.85, 0.85, 0.85],
                         [0.20, 0.55, 0.25], [0.90, 0.75, 0.10], [0.45, 0.45, 0.50], [0.55, 0.30, 0.15]], np.float32)  # fmt: skip
WALL_PALETTE = np.array(
    [[0.76, 0.70, 0.62], [0.62, 0.55, 0.50], [0.80, 0.78, 0.74], [0.55, 0.42, 0.35], [0.68, 0.72, 0.75]], np.float32
)
EGO_COLOR = (0.92, 0.92, 0.95)


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    """Static settings of the procedural world (metres unless noted).

    ground_spacing: grid step of road / sidewalk / grass Gaussians; target_gaussians > 0
      overrides it so the background has about that many Gaussians (the benchmark's knob).
    actor_gaussians: Gaussians per actor template (slot), fixed so envs batch evenly.
    """

    ground_spacing: float = 0.5
    target_gaussians: int = 0
    marking_step: float = 0.25
    dash_on: float = 3.0
    dash_off: float = 6.0
    curb_width: float = 0.4
    sidewalk_width: float = 3.0
    buildings: bool = True
    building_spacing: float = 1.0
    far_ground: float = 300.0
    actor_gaussians: int = 384
    vehicle_height: float = 1.5
    seed: int = 0

    def __post_init__(self):
        check_range("ground_spacing", self.ground_spacing, 0.05, 10.0)
        check_range("target_gaussians", self.target_gaussians, 0, 50_000_000)
        check_range("marking_step", self.marking_step, 0.05, 2.0)
        check_range("sidewalk_width", self.sidewalk_width, 0.0, 20.0)
        check_range("building_spacing", self.building_spacing, 0.1, 10.0)
        check_range("actor_gaussians", self.actor_gaussians, 16, 100_000)
        check_range("far_ground", self.far_ground, 0.0, 10_000.0)


def _extent(sc: dict):
    h, w = sc["sdf"].shape
    res, o = float(sc["sdf_res"]), np.asarray(sc["sdf_origin"], np.float64)
    return o - 0.5 * res, o + (np.array([w, h]) - 0.5) * res


def ground(sc: dict, cfg: WorldConfig, spacing: float, rng) -> dict:
    """Road, curb, sidewalk and grass Gaussians on a grid over the SDF's extent."""
    lo, hi = _extent(sc)
    xs, ys = np.arange(lo[0] + spacing / 2, hi[0], spacing), np.arange(lo[1] + spacing / 2, hi[1], spacing)
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    pts = np.stack([gx.ravel(), gy.ravel()], -1)
    d = wp.sample_grid(np.asarray(sc["sdf"], np.float64), sc["sdf_origin"], float(sc["sdf_res"]), pts)
    zones = [  # (mask, colour, z of the surface, thickness)
        (d < 0.0, ROAD, 0.0, 0.02),
        ((d >= 0.0) & (d < cfg.curb_width), CURB, 0.10, 0.06),
        ((d >= cfg.curb_width) & (d < cfg.curb_width + cfg.sidewalk_width), SIDEWALK, 0.15, 0.03),
        (d >= cfg.curb_width + cfg.sidewalk_width, GRASS, 0.03, 0.03),
    ]
    parts = []
    for mask, color, z, thick in zones:
        p = pts[mask]
        means = np.concatenate([p, np.full((len(p), 1), z)], -1)
        parts.append(wp.jitter_colors(wp.gaussians(means, (0.6 * spacing, 0.6 * spacing, thick), color, 0.97), rng))
    return wp.merge(parts)


def far_ground(sc: dict, cfg: WorldConfig) -> dict:
    """Coarse grass ring around the SDF's extent out to `far_ground` so the horizon is closed."""
    if cfg.far_ground <= 0:
        return wp.merge([])
    lo, hi = _extent(sc)
    c, step = 0.5 * (lo + hi), 8.0
    g = np.arange(-cfg.far_ground, cfg.far_ground + step, step)
    gx, gy = np.meshgrid(g + c[0], g + c[1], indexing="xy")
    p = np.stack([gx.ravel(), gy.ravel()], -1)
    outside = (
        (p[:, 0] < lo[0] - step / 2)
        | (p[:, 0] > hi[0] + step / 2)
        | (p[:, 1] < lo[1] - step / 2)
        | (p[:, 1] > hi[1] + step / 2)
    )
    p = p[outside]
    return wp.gaussians(np.concatenate([p, np.full((len(p), 1), 0.0)], -1), (0.6 * step, 0.6 * step, 0.05), GRASS, 0.97)


def lane_markings(sc: dict, cfg: WorldConfig) -> dict:
    """Boundary markings of every lane; skipped where they would cross another lane's surface."""
    lanes, counts = np.asarray(sc["lane_points"], np.float64), np.asarray(sc["lane_num_points"])
    widths, left, right = np.asarray(sc["lane_width"]), np.asarray(sc["lane_left"]), np.asarray(sc["lane_right"])
    pos, yaw = [], []
    for lane in range(len(lanes)):
        if counts[lane] < 2:
            continue
        p, t, s = wp.resample_polyline(lanes[lane, : counts[lane]], cfg.marking_step)
        normal = np.stack([-t[:, 1], t[:, 0]], -1)
        dashed = (s % (cfg.dash_on + cfg.dash_off)) < cfg.dash_on
        sides = [(+1.0, dashed if left[lane] >= 0 else np.ones_like(dashed))]  # shared left boundary drawn once, dashed
        if right[lane] < 0:
            sides.append((-1.0, np.ones_like(dashed)))
        heading = np.arctan2(t[:, 1], t[:, 0])
        others = np.setdiff1d(np.nonzero(counts >= 2)[0], [lane, left[lane], right[lane]])
        for sign, keep in sides:
            q, y = (p + sign * 0.5 * widths[lane] * normal)[keep], heading[keep]
            if len(others) and len(q):  # a marking inside another lane (junctions) would paint across it
                dist = wp.point_to_polylines(q, lanes[others], counts[others])
                clear = np.all(dist > 0.5 * widths[others] - 0.25, axis=1)
                q, y = q[clear], y[clear]
            pos.append(q)
            yaw.append(y)
    if not pos:
        return wp.merge([])
    q, y = np.concatenate(pos), np.concatenate(yaw)
    means = np.concatenate([q, np.full((len(q), 1), 0.03)], -1)
    return wp.gaussians(means, (0.7 * cfg.marking_step, 0.07, 0.01), MARKING, 0.95, yaw=y)


def static_obstacles(sc: dict) -> dict:
    parts = []
    for (x, y, yaw, length, width), ok in zip(np.asarray(sc["static_boxes"]), np.asarray(sc["static_valid"])):
        if ok:
            parts.append(wp.box_surface((x, y, 0.5), (length, width, 1.0), yaw, 0.25, BARRIER))
    return wp.merge(parts)


def buildings(sc: dict, cfg: WorldConfig, rng) -> dict:
    """Boxy buildings with window rows, placed on a jittered grid clear of road and sidewalk."""
    if not cfg.buildings:
        return wp.merge([])
    lo, hi = _extent(sc)
    g = 16.0
    cx, cy = np.meshgrid(np.arange(lo[0] + g / 2, hi[0], g), np.arange(lo[1] + g / 2, hi[1], g), indexing="xy")
    centres = np.stack([cx.ravel(), cy.ravel()], -1) + rng.uniform(-3, 3, (cx.size, 2))
    sizes = rng.uniform(7.0, 13.0, (len(centres), 2))
    heights = rng.uniform(5.0, 18.0, len(centres))
    d = wp.sample_grid(np.asarray(sc["sdf"], np.float64), sc["sdf_origin"], float(sc["sdf_res"]), centres)
    clear = d > cfg.curb_width + cfg.sidewalk_width + 1.5 + 0.5 * np.linalg.norm(sizes, axis=1)
    parts = []
    for (x, y), (a, b), h in zip(centres[clear], sizes[clear], heights[clear]):
        color = WALL_PALETTE[rng.integers(len(WALL_PALETTE))]
        box = wp.box_surface((x, y, h / 2), (a, b, h), 0.0, cfg.building_spacing, color, 1.0)
        z = box["means"][:, 2]
        window = (np.abs(box["means"][:, 2] - h) > 0.01) & ((z % 3.0) > 1.2) & ((z % 3.0) < 2.3) & (z > 1.0)
        box["colors"][window] = GLASS
        parts.append(box)
    return wp.merge(parts)


def actor_template(size, agent_type: int, color, m: int, vehicle_height: float) -> dict:
    """Exactly m Gaussians of one actor in its own frame (centre of its box on the ground)."""
    key = (round(float(size[0]), 3), round(float(size[1]), 3), int(agent_type), tuple(np.round(np.asarray(color, float), 4)),
           int(m), float(vehicle_height))  # fmt: skip
    return {k: v.copy() for k, v in _actor_template(*key).items()}


@functools.lru_cache(maxsize=4096)
def _actor_template(length, width, agent_type, color, m, vehicle_height) -> dict:
    length, width, color = max(length, 0.3), max(width, 0.3), np.asarray(color, np.float32)
    if agent_type == AgentType.PEDESTRIAN:
        boxes = [((0, 0, 0.45), (length, width, 0.9), (0.2, 0.2, 0.3)), ((0, 0, 1.3), (length, width, 0.8), color)]
    elif agent_type == AgentType.CYCLIST:
        boxes = [((0, 0, 0.4), (length, 0.15, 0.7), TYRE), ((0, 0, 1.2), (0.5, width * 0.8, 0.8), color)]
    else:
        h = vehicle_height
        body, cabin = (length, width, 0.45 * h), (0.55 * length, 0.9 * width, 0.35 * h)
        boxes = [((0, 0, 0.2 * h + body[2] / 2), body, color),
                 ((-0.05 * length, 0, 0.2 * h + body[2] + cabin[2] / 2), cabin, GLASS)]  # fmt: skip
        for sx in (-0.32, 0.32):
            for sy in (-1, 1):
                boxes.append(((sx * length, sy * (width / 2 - 0.15), 0.33), (0.66, 0.3, 0.66), TYRE))
    area = sum(wp.box_area(s) for _, s, _ in boxes)
    spacing = np.sqrt(area / m) * 0.8
    for _ in range(200):  # the finest even tiling that fits in m (random trimming would leave holes)
        g = wp.merge([wp.box_surface(c, s, 0.0, spacing, col, 0.98) for c, s, col in boxes])
        if len(g["means"]) <= m:
            break
        spacing *= 1.08
    else:  # every face keeps a few Gaussians however coarse the tiling: below that, keep every k-th
        g = {k: v[:: -(-len(g["means"]) // m)] for k, v in g.items()}
    if g["means"].shape[0] > 0 and agent_type == AgentType.VEHICLE:  # roof keeps the body colour
        roof = g["means"][:, 2] > 0.2 * vehicle_height + 0.45 * vehicle_height + 0.35 * vehicle_height - 0.02
        g["colors"][roof] = color
    n = len(g["means"])
    if n < m:  # pad with invisible Gaussians
        pad = wp.gaussians(np.zeros((m - n, 3)), (1e-3,) * 3, (0, 0, 0), 0.0)
        g = wp.merge([g, pad])
    return g


def build_background(sc: dict, cfg: WorldConfig = WorldConfig()) -> dict:
    """Static Gaussians of one scenario (numpy dict of its fields)."""
    rng = np.random.default_rng(zlib.crc32(f"{cfg.seed}/{int(sc['scenario_id'])}".encode()))
    parts = [lane_markings(sc, cfg), static_obstacles(sc), buildings(sc, cfg, rng), far_ground(sc, cfg)]
    fixed = sum(len(p["means"]) for p in parts)
    spacing = cfg.ground_spacing
    if cfg.target_gaussians:
        lo, hi = _extent(sc)
        room = max(cfg.target_gaussians - fixed, 1000)
        spacing = float(np.clip(np.sqrt(np.prod(hi - lo) / room), 0.05, 10.0))
    g = wp.merge([ground(sc, cfg, spacing, rng)] + parts)
    while cfg.target_gaussians and len(g["means"]) < cfg.target_gaussians and spacing > 0.05:
        spacing *= 0.97  # the grid estimate rounds down at the edges: densify until the target fits
        g = wp.merge([ground(sc, cfg, spacing, rng)] + parts)
    if cfg.target_gaussians:
        g = wp.subsample(g, cfg.target_gaussians, rng)
    return g


def build_actor_templates(sc: dict, cfg: WorldConfig = WorldConfig()) -> dict:
    """Templates of the 1 + A actor slots (slot 0 = ego): arrays with leading (1 + A, M)."""
    sid = int(sc["scenario_id"])
    out = [actor_template(sc["ego_size"], AgentType.VEHICLE, EGO_COLOR, cfg.actor_gaussians, cfg.vehicle_height)]
    for a, (size, kind) in enumerate(zip(np.asarray(sc["agent_size"]), np.asarray(sc["agent_type"]))):
        color = BODY_PALETTE[zlib.crc32(f"{sid}/{a}".encode()) % len(BODY_PALETTE)]
        out.append(actor_template(size, int(kind), color, cfg.actor_gaussians, cfg.vehicle_height))
    return {k: np.stack([t[k] for t in out]) for k in wp.KEYS}


def scenario_dicts(bank) -> list[dict]:
    """Per-scenario numpy dicts from a jaxsim bank (Scenario with a leading N axis)."""
    arrays = {k: np.asarray(getattr(bank, k)) for k in FIELD_SPECS}
    n = arrays["ego_traj"].shape[0]
    return [{k: v[i] for k, v in arrays.items()} for i in range(n)]


def _scene_arrays(args):
    """(background, actor templates) numpy dicts of one scenario (a process-pool task)."""
    sc, cfg = args
    return build_background(sc, cfg), build_actor_templates(sc, cfg)


def build_scene_bank(bank, cfg: WorldConfig = WorldConfig(), device=None, backgrounds: dict | None = None,
                     workers: int | None = None):  # fmt: skip
    """A `SceneBank` for every scenario of `bank` on `device`.

    backgrounds: optional {scenario index: GaussianSet} replacing the procedural
    background (e.g. a reconstruction imported with `render_bridge.ply`).
    workers: processes building scenes in parallel (default: one per core, up to 16,
    for banks of 16+ scenes; about 1 s of numpy per 200k-Gaussian scene otherwise).
    """
    import os

    from render_bridge import scene

    scs = scenario_dicts(bank)
    if workers is None:
        workers = min(os.cpu_count() or 1, 16) if len(scs) >= 16 else 1
    tasks = [(sc, cfg) for sc in scs]
    if workers > 1:
        import concurrent.futures as cf
        import multiprocessing as mp

        # spawn, not fork: the parent holds JAX/torch runtimes that must not be forked
        with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            built = list(pool.map(_scene_arrays, tasks, chunksize=max(1, len(tasks) // (4 * workers))))
    else:
        built = [_scene_arrays(t) for t in tasks]
    bgs, actors = [], []
    for i, (bg, act) in enumerate(built):
        if backgrounds and i in backgrounds:
            bgs.append(backgrounds[i].to("cpu"))
        else:
            bgs.append(scene.GaussianSet.from_numpy(bg))
        actors.append(scene.GaussianSet.from_numpy(act))
    return scene.SceneBank(scene.stack(bgs), scene.stack(actors)).to(device)
