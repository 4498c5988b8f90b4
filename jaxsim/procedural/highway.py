"""Road layouts built around one reference line: straight road, curved road, on-ramp merge.

The reference line runs along station s in [-300, 300] m (the route samples). Lanes sit at
constant lateral offsets d (left normal): forward lanes (driving +s) at
d = -(median/2 + (k + 0.5) w), k = 0 the innermost (leftmost); opposite lanes mirror
them on the other side, driving -s. Every highway lane is parameterised by its station
(opposite lanes by -station), so cars on different lanes compare positions directly.
The merge layout splits the forward lanes at the merge point (upstream / downstream
segments joined by `lane_succ`) and adds a ramp that approaches at an angle, runs as an
acceleration lane beside the rightmost lane, and tapers into it.
"""

from __future__ import annotations

import math

import numpy as np

from jaxsim.procedural.curves import band_polygon, integrate_heading, left_normal, rotation, smoothstep5
from jaxsim.procedural.roadmap import LANE_SPACING, ROUTE_DU, ROUTE_POINTS, RoadMap
from jaxsim.scenario import Layout

STATIONS = -300.0 + ROUTE_DU * np.arange(ROUTE_POINTS)  # (K,) route samples
VISIBLE = 105.0  # lane polylines stored for |station| <= VISIBLE (~4.4 m point spacing)
POLY_HALF = 150.0  # drivable polygons cover |station| <= POLY_HALF


def _curvature_profile(rng) -> np.ndarray:
    """Piecewise-constant curvature arcs joined by 15 m linear ramps: (K,) 1/m."""
    kappa = np.zeros(ROUTE_POINTS)
    kind = rng.choice(("arc", "s_curve", "compound"))
    s = rng.uniform(-90.0, -20.0)
    sign = rng.choice((-1.0, 1.0))
    arcs = []
    if kind == "arc":
        radius = rng.uniform(45.0, 220.0)
        arcs.append((sign / radius, radius * rng.uniform(0.5, 1.4)))
    elif kind == "s_curve":
        for flip in (1.0, -1.0):
            radius = rng.uniform(50.0, 200.0)
            arcs.append((flip * sign / radius, radius * rng.uniform(0.35, 0.8)))
    else:
        for _ in range(2):
            radius = rng.uniform(50.0, 250.0)
            arcs.append((sign / radius, radius * rng.uniform(0.3, 0.6)))
    ramp = 15.0
    for k, length in arcs:
        length = max(length, 2 * ramp)
        up = np.clip((STATIONS - s) / ramp, 0.0, 1.0)
        down = np.clip((s + length - STATIONS) / ramp, 0.0, 1.0)
        kappa += k * np.minimum(up, down)
        s += length
    return kappa


def _soft_hinge(x: np.ndarray) -> np.ndarray:
    """0 for x <= 0, x^2/2 on [0, 1], x - 1/2 beyond: a C1 corner."""
    return np.where(x <= 0, 0.0, np.where(x < 1, 0.5 * x * x, x - 0.5))


def build_highway(rng, layout: int, max_lanes: int, lane_points: int, ego_speed: float, duration: float) -> RoadMap:
    """Straight, curved or merge road around the ego's stretch of road.

    ego_speed (m/s) and duration (s) place the ego's start station (so its path is
    centred near station 0) and, for merges, the merge point within the log.
    """
    road = RoadMap(layout, max_lanes, lane_points)
    w = rng.uniform(3.3, 3.8)
    if layout == Layout.STRAIGHT:
        nf = rng.randint(2, 4)
        no = rng.choice((0, nf, rng.randint(2, nf)))
    elif layout == Layout.CURVE:
        nf = rng.randint(1, 3)
        no = rng.choice((0, nf, nf, rng.randint(1, 3))) or (1 if nf == 1 else 0)  # no one-lane roads
    else:
        nf = rng.randint(2, 3)
        no = rng.choice((0, nf))
    median = rng.uniform(1.5, 4.0) if no and (layout == Layout.MERGE or rng.chance(0.35)) else 0.0
    sh_f, sh_o = rng.uniform(1.0, 3.0), rng.uniform(1.0, 3.0)
    kappa = _curvature_profile(rng) if layout == Layout.CURVE else np.zeros(ROUTE_POINTS)
    ref, ref_yaw = integrate_heading(kappa, ROUTE_DU)
    mid = ROUTE_POINTS // 2  # station 0 at the scene origin, heading 0
    ref = ref - ref[mid]
    ref = ref @ rotation(-ref_yaw[mid]).T
    ref_yaw = ref_yaw - ref_yaw[mid]
    normal = left_normal(ref_yaw)
    d_fwd = [-(median / 2 + (k + 0.5) * w) for k in range(nf)]
    d_opp = [median / 2 + (k + 0.5) * w for k in range(no)]
    ego_u0 = -0.5 * ego_speed * duration + rng.uniform(-8.0, 8.0)
    info = dict(lane_width=w, nf=nf, no=no, ego_u0=ego_u0, fwd_routes=[], opp_routes=[], ramp_route=None)

    merge = layout == Layout.MERGE
    if merge:
        ego_on_ramp = rng.chance(0.6)
        taper = rng.uniform(30.0, 50.0)
        accel_len = rng.uniform(20.0, 50.0)
        # the taper ends 3.5-6 s of ego driving after its start, so the merge is in the log,
        # and an ego on the ramp starts before the taper
        if ego_on_ramp:
            s_m = max(ego_u0 + ego_speed * rng.uniform(3.5, 6.0), ego_u0 + taper + 15.0)
        else:
            s_m = rng.uniform(-10.0, 50.0)
        s_m = float(np.clip(s_m, -60.0, 60.0))
        s_t1, s_t0 = s_m - taper, s_m - taper - accel_len
        theta = math.radians(rng.uniform(12.0, 20.0))
        blend = 30.0
        d_r = d_fwd[-1]
        d_ramp = (
            d_r
            - w * (1.0 - smoothstep5((STATIONS - s_t1) / taper))
            - math.tan(theta) * blend * _soft_hinge((s_t0 - STATIONS) / blend)
        )
        info.update(ego_on_ramp=ego_on_ramp, merge_s=s_m, taper_s=s_t1)

    # ---- lanes (left to right within each direction), evenly spaced in station ----
    P = lane_points

    def lane_xy(lo, hi, d, reverse=False):
        """Lane polylines (n, p, 2) over stations [lo, hi] at offsets d (n,) or (n, K) arrays."""
        sq = np.linspace(lo, hi, int(min(P, max(2, np.ceil((hi - lo) / LANE_SPACING) + 1))))
        base = np.stack([np.interp(sq, STATIONS, ref[:, 0]), np.interp(sq, STATIONS, ref[:, 1])], -1)
        nq = left_normal(np.interp(sq, STATIONS, ref_yaw))
        d = np.asarray(d, float)
        dq = np.stack([np.interp(sq, STATIONS, row) for row in d]) if d.ndim == 2 else d[:, None]
        pts = base[None] + dq[..., None] * nq[None]
        return pts[:, ::-1] if reverse else pts

    def add(pts):
        return [road.add_lane(p, w, uniform=True) for p in pts]

    if merge:
        up = add(lane_xy(-VISIBLE, s_m, d_fwd))
        down = add(lane_xy(s_m, VISIBLE, d_fwd))
        ramp = add(lane_xy(-VISIBLE, s_m, d_ramp[None]))[0]
        road.link_neighbours(up + [ramp])
        road.link_neighbours(down)
        for a, b in zip(up, down):
            road.add_successor(a, b)
        road.add_successor(ramp, down[-1])
    else:
        up = down = add(lane_xy(-VISIBLE, VISIBLE, d_fwd))
        road.link_neighbours(up)
    opp = add(lane_xy(-VISIBLE, VISIBLE, d_opp, reverse=True)) if no else []
    road.link_neighbours(opp)

    # ---- routes: one per lane, u = station (forward) or -station (opposite) ----
    K = ROUTE_POINTS
    df = np.array(d_fwd)
    lane_at = (
        np.where(STATIONS < s_m, np.array(up)[:, None], np.array(down)[:, None])
        if merge
        else np.repeat(np.array(up)[:, None], K, 1)
    )
    info["fwd_routes"] = road.add_routes(
        ref[None] + df[:, None, None] * normal[None], np.tile(ref_yaw, (nf, 1)), STATIONS[0], lane_at
    )
    if no:
        do = np.array(d_opp)
        xy = (ref[None] + do[:, None, None] * normal[None])[:, ::-1]
        info["opp_routes"] = road.add_routes(
            xy, np.tile((ref_yaw + math.pi)[::-1], (no, 1)), STATIONS[0], np.repeat(np.array(opp)[:, None], K, 1)
        )
    for group in (info["fwd_routes"], info["opp_routes"]):
        for a, b in zip(group[:-1], group[1:]):
            road.route_right[a], road.route_left[b] = b, a
    if merge:
        slope = np.gradient(d_ramp, ROUTE_DU)
        r = road.add_routes(
            (ref + d_ramp[:, None] * normal)[None],
            (ref_yaw + np.arctan(slope))[None],
            STATIONS[0],
            np.where(STATIONS < s_m, ramp, down[-1])[None],
        )[0]
        in_taper = (np.abs(d_ramp - d_r) < 0.75 * w) & (STATIONS < s_m)
        road.route_lane2[r] = np.where(in_taper, up[-1], -1)
        # ramp cars line up behind main-road cars beside them (a zipper merge)
        road.route_watch2[r] = np.where((STATIONS > s_t0 - 20.0) & (STATIONS < s_m), up[-1], -1)
        info["ramp_route"] = r
    road.finish()

    # ---- drivable area ----
    pw = np.abs(STATIONS) <= POLY_HALF + 1e-6
    c, yaw = ref[pw], ref_yaw[pw]
    right_edge = -(median / 2 + nf * w + sh_f)
    if no and median == 0.0:
        bands = [(right_edge, no * w + sh_o)]
    else:
        bands = [(right_edge, -median / 2 + (0.6 if no else 0.8))]
        if no:
            bands.append((median / 2 - 0.6, median / 2 + no * w + sh_o))
    road.polygons.extend(band_polygon(c, yaw, lo, hi) for lo, hi in bands)
    if layout == Layout.STRAIGHT:
        road.sdf_shape = ("bands", (np.zeros(2), 0.0, bands))
    if merge:
        keep = pw & (STATIONS <= s_m + ROUTE_DU)
        ramp_xy = ref[keep] + d_ramp[keep, None] * normal[keep]
        ramp_yaw = ref_yaw[keep] + np.arctan(slope[keep])
        road.polygons.append(band_polygon(ramp_xy, ramp_yaw, -(w / 2 + 1.0), w / 2 + 1.0))

    # ---- parking spots on wide shoulders, cones/barriers on the others ----
    spots = []
    for side, sh, lanes_w, sgn in ((1.0, sh_f, nf * w, -1.0), (-1.0, sh_o, no * w, 1.0)):
        if side < 0 and not no:
            continue
        edge = median / 2 + lanes_w
        for _ in range(rng.randint(0, 4)):
            s = rng.uniform(-100.0, 100.0)
            if merge and side > 0 and s < s_m + 15.0:
                continue
            i = int(round((s - STATIONS[0]) / ROUTE_DU))
            heading = float(ref_yaw[i]) + (0.0 if side > 0 else math.pi)
            if sh >= 2.3:
                length, width = rng.uniform(4.2, 5.0), rng.uniform(1.75, 1.95)
                off = edge + sh / 2
            else:
                length, width = (0.5, 0.5) if rng.chance(0.6) else (2.0, 0.5)
                off = edge + min(sh, 1.2) - 0.35
            p = ref[i] + sgn * off * normal[i]
            spots.append((float(p[0]), float(p[1]), heading + rng.uniform(-0.05, 0.05), length, width))
    road.parking = spots
    road.info = info
    return road
