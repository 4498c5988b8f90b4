"""Top-down pictures of scenarios with PIL (no matplotlib): PNG frames, GIF/MP4 clips.

    img = draw_scene(scenario, t=10)                       # (512, 512, 3) uint8
    img = draw_scene(scenario, t, ego_state=s, agents=a, highlight=adv_mask)
    save_png(img, "scene.png"); save_animation(frames, "clip.gif", fps=10)

World frame, y up. Colours: drivable area dark grey on a light background, lane
centrelines dashed, agents blue (pedestrians purple, cyclists teal, highlighted red),
static boxes brown, the ego orange, its route green.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageDraw

from jaxsim.scenario import AgentType

BACKGROUND = (232, 234, 226)
ROAD = (92, 94, 100)
KERB = (210, 210, 200)
LANE = (205, 205, 190)
ROUTE = (60, 200, 110)
EGO = (245, 145, 30)
STATIC = (140, 105, 70)
HIGHLIGHT = (225, 40, 40)
AGENT_COLORS = {
    int(AgentType.VEHICLE): (70, 130, 235),
    int(AgentType.PEDESTRIAN): (175, 80, 205),
    int(AgentType.CYCLIST): (40, 170, 170),
}
SUPERSAMPLE = 2


def _np(x):
    return np.asarray(x)


def _sdf_at(sdf, origin, res, pts):
    """Bilinear SDF lookup (numpy); beyond the grid the border value plus the distance to it."""
    h, w = sdf.shape
    g = (pts - origin) / res
    gx, gy = np.clip(g[..., 0], 0, w - 1), np.clip(g[..., 1], 0, h - 1)
    x0, y0 = np.clip(np.floor(gx).astype(int), 0, w - 2), np.clip(np.floor(gy).astype(int), 0, h - 2)
    fx, fy = gx - x0, gy - y0
    top = sdf[y0, x0] * (1 - fx) + sdf[y0, x0 + 1] * fx
    val = top * (1 - fy) + (sdf[y0 + 1, x0] * (1 - fx) + sdf[y0 + 1, x0 + 1] * fx) * fy
    return val + np.hypot(g[..., 0] - gx, g[..., 1] - gy) * res


def default_view(scenario, margin: float = 25.0) -> tuple[float, float, float]:
    """(cx, cy, half_extent) m: a square around the ego's logged path plus `margin`."""
    traj, valid = _np(scenario.ego_traj), _np(scenario.ego_valid)
    xy = traj[valid, :2] if valid.any() else traj[:1, :2]
    lo, hi = xy.min(0), xy.max(0)
    c = 0.5 * (lo + hi)
    return float(c[0]), float(c[1]), float(max(0.5 * np.max(hi - lo) + margin, 30.0))


def _corners(box):
    """Corners (4, 2) of [x, y, yaw, length, width], counter-clockwise from front-left."""
    x, y, yaw, length, width = (float(v) for v in box[:5])
    c, s = np.cos(yaw), np.sin(yaw)
    local = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) * [0.5 * length, 0.5 * width]
    return local @ np.array([[c, s], [-s, c]]) + [x, y]


def draw_scene(
    scenario,
    t: int = 0,
    ego_state=None,
    agents=None,
    agent_valid=None,
    route=None,
    size_px: int = 512,
    view=None,
    highlight=None,
) -> np.ndarray:
    """Picture (size_px, size_px, 3) uint8 of one scenario (not a bank) at log step t.

    ego_state: [x, y, yaw, speed] to draw instead of the logged ego at t.
    agents: (A, 4) simulated agent states to draw instead of the log (sizes from the
      scenario); agent_valid: (A,) bool mask for them (default: the log's mask at t).
    route: (K, 2) polyline to draw as the ego route (default: the logged ego path).
    view: (cx, cy, half_extent) metres of the square world window (default_view).
    highlight: (A,) bool, agents drawn in red (e.g. adversaries).
    """
    if _np(scenario.ego_traj).ndim != 2:
        raise ValueError("draw_scene takes one Scenario; index a bank first (bank[i])")
    T = _np(scenario.ego_traj).shape[0]
    if not 0 <= int(t) < T:
        raise ValueError(f"t={t} out of range for a log of {T} steps")
    cx, cy, he = view if view is not None else default_view(scenario)
    S = int(size_px) * SUPERSAMPLE
    scale = S / (2.0 * he)

    def px(p):
        p = np.asarray(p, float)
        return np.stack([(p[..., 0] - (cx - he)) * scale, ((cy + he) - p[..., 1]) * scale], -1)

    # drivable area from the SDF, sampled at every output pixel
    lin = (np.arange(size_px) + 0.5) / size_px * 2 * he
    gx, gy = np.meshgrid(cx - he + lin, cy + he - lin)
    d = _sdf_at(_np(scenario.sdf), _np(scenario.sdf_origin), float(_np(scenario.sdf_res)), np.stack([gx, gy], -1))
    base = np.empty((size_px, size_px, 3), np.uint8)
    base[:] = BACKGROUND
    base[d < 0] = ROAD
    base[np.abs(d) < 0.25 * max(1.0, he / 60.0)] = KERB
    img = Image.fromarray(base).resize((S, S), Image.NEAREST)
    draw = ImageDraw.Draw(img)
    lw = max(1, int(round(0.15 * scale)))

    # lane centrelines, dashed 3 m on / 3 m off
    pts, num = _np(scenario.lane_points), _np(scenario.lane_num_points)
    for lane in range(pts.shape[0]):
        if num[lane] < 2:
            continue
        p = pts[lane, : num[lane]]
        seg = np.hypot(*np.diff(p, axis=0).T)
        s = np.concatenate([[0.0], np.cumsum(seg)])
        for a in np.arange(0.0, s[-1], 6.0):
            b = min(a + 3.0, s[-1])
            q = np.stack([np.interp([a, b], s, p[:, 0]), np.interp([a, b], s, p[:, 1])], -1)
            draw.line([tuple(v) for v in px(q).tolist()], fill=LANE, width=lw)

    # expert route
    if route is None:
        traj, valid = _np(scenario.ego_traj), _np(scenario.ego_valid)
        route = traj[valid, :2]
    route = np.asarray(route)
    if len(route) >= 2:
        draw.line([tuple(v) for v in px(route).tolist()], fill=ROUTE, width=max(2, int(round(0.5 * scale))))

    def box(b, fill, outline=(30, 30, 30), heading=True):
        c = px(_corners(b))
        draw.polygon([tuple(v) for v in c.tolist()], fill=fill, outline=outline)
        if not heading:
            return
        front = px(np.array([b[0] + 0.5 * b[3] * np.cos(b[2]), b[1] + 0.5 * b[3] * np.sin(b[2])]))
        draw.line([tuple(px(np.array(b[:2]))), tuple(front)], fill=(255, 255, 255), width=lw)

    for b, ok in zip(_np(scenario.static_boxes), _np(scenario.static_valid)):
        if ok:
            box(b, STATIC, heading=False)
    states = _np(scenario.agent_traj)[t] if agents is None else np.asarray(agents)
    if agent_valid is None:
        agent_valid = _np(scenario.agent_valid)[t] if agents is None else _np(scenario.agent_type) > 0
    sizes, types = _np(scenario.agent_size), _np(scenario.agent_type)
    hl = np.zeros(len(sizes), bool) if highlight is None else np.asarray(highlight, bool)
    for a in range(len(sizes)):
        if agent_valid[a]:
            color = HIGHLIGHT if hl[a] else AGENT_COLORS.get(int(types[a]), AGENT_COLORS[int(AgentType.VEHICLE)])
            box(np.concatenate([states[a, :3], sizes[a]]), color)
    ego = _np(scenario.ego_traj)[t] if ego_state is None else np.asarray(ego_state)
    box(np.concatenate([ego[:3], _np(scenario.ego_size)]), EGO)
    return np.asarray(img.resize((size_px, size_px), Image.LANCZOS), dtype=np.uint8)


def draw_log(scenario, size_px: int = 512, every: int = 1, view=None) -> list[np.ndarray]:
    """Frames of the whole logged scenario (every `every`-th step), one fixed view."""
    view = view or default_view(scenario)
    T = _np(scenario.ego_traj).shape[0]
    return [draw_scene(scenario, t, size_px=size_px, view=view) for t in range(0, T, max(1, int(every)))]


def _check_image(img) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got shape {img.shape} dtype {img.dtype}")
    return img


def _parent(path) -> str:
    path = os.fspath(path)
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def save_png(img: np.ndarray, path) -> None:
    """Write an (H, W, 3) uint8 image as PNG (parent folders are created)."""
    Image.fromarray(_check_image(img)).save(_parent(path), format="PNG")


def save_animation(frames: list[np.ndarray], path, fps: float = 10) -> None:
    """Write frames as an animated .gif (PIL) or .mp4 (imageio + imageio-ffmpeg)."""
    if not frames:
        raise ValueError("save_animation needs at least one frame")
    frames = [_check_image(f) for f in frames]
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".gif":
        imgs = [Image.fromarray(f) for f in frames]
        imgs[0].save(_parent(path), save_all=True, append_images=imgs[1:], duration=int(round(1000 / fps)), loop=0)
    elif ext == ".mp4":
        try:
            import imageio.v2 as imageio
            import imageio_ffmpeg  # noqa: F401  (the ffmpeg binary imageio writes mp4 with)
        except ImportError as err:
            raise ValueError(
                f"writing {path} needs imageio-ffmpeg (pip install 'recondreamer-rl-jax[video]'); or save a .gif"
            ) from err
        with imageio.get_writer(_parent(path), fps=fps, codec="libx264", macro_block_size=1) as writer:
            for f in frames:
                writer.append_data(f)
    else:
        raise ValueError(f"animation path must end in .gif or .mp4, got {path!r}")
