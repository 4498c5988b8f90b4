"""Four-way intersection: four arms of n in + n out lanes, connector lanes across the box.

Arms a = 0..3 point south, east, north, west (outward yaw -pi/2, 0, pi/2, pi); the ego
arrives from the south. Right-hand traffic: on an arm with outward direction e and
left normal n, incoming lane k (k = 0 innermost) runs at r e + n (k + 1/2) w towards
the centre and outgoing lane k at r e - n (k + 1/2) w away from it. Incoming lanes stop
at the stop line r = B; connectors (cubic Beziers) join them to outgoing lanes:
straight from every lane, left from lane 0, right from lane n-1. One route per
connector: approach (ROUTE_IN m) -> connector -> exit, with `route_c` so cars on a
shared approach or exit lane see each other. Kerbs are quarter circles of radius rk
cut out of the corner blocks.
"""

from __future__ import annotations

import math

import numpy as np

from jaxsim.procedural.curves import bezier_connectors, interp_rows, left_normal
from jaxsim.procedural.roadmap import ROUTE_DU, ROUTE_POINTS, RoadMap
from jaxsim.scenario import Layout

ARM_YAW = (-math.pi / 2, 0.0, math.pi / 2, math.pi)
ROUTE_IN = 260.0  # m of approach lane in each route before the stop line
LANE_LEN = 100.0  # m of arm lanes stored as lane polylines
EXTENT = 170.0  # m of arm beyond the stop line in the drivable polygon
STRAIGHT, LEFT, RIGHT = 0, 1, 2
TURN_TO = {STRAIGHT: 2, LEFT: 3, RIGHT: 1}  # target arm = (a + offset) % 4


def _outline(W: float, rk: float, extent: float) -> np.ndarray:
    """Cross-shaped drivable outline: arms of half-width W, kerb fillets of radius rk."""
    pts = []
    a = W + rk
    for q in range(4):  # corner between arm q and arm q+1, counter-clockwise from +x
        rot = np.array(
            [
                [math.cos(q * math.pi / 2), -math.sin(q * math.pi / 2)],
                [math.sin(q * math.pi / 2), math.cos(q * math.pi / 2)],
            ]
        )
        ang = np.linspace(-math.pi / 2, -math.pi, 10)
        fillet = [(a + rk * math.cos(t), a + rk * math.sin(t)) for t in ang]
        corner = [(extent, -W), (extent, W)] + fillet + [(W, extent)]
        pts.extend((rot @ np.array(p)) for p in corner)
    return np.array(pts)


def build_intersection(rng, max_lanes: int, lane_points: int) -> RoadMap:
    road = RoadMap(Layout.INTERSECTION, max_lanes, lane_points)
    n = 2 if max_lanes >= 32 and rng.chance(0.5) else 1
    w = rng.uniform(3.2, 3.7)
    sh = rng.uniform(1.0, 3.0)
    rk = rng.uniform(4.0, 8.0)
    W = n * w + sh
    B = W + rk + rng.uniform(0.5, 1.5)
    e = [np.array([math.cos(y), math.sin(y)]) for y in ARM_YAW]
    nl = [left_normal(np.array(y)) for y in ARM_YAW]
    t = np.linspace(0.0, 1.0, 48)[:, None]

    def arm_point(a, r, off):
        return r * e[a] + off * nl[a]

    in_lane, out_lane = {}, {}
    for a in range(4):
        for k in range(n):
            p0, p1 = arm_point(a, B + LANE_LEN, (k + 0.5) * w), arm_point(a, B, (k + 0.5) * w)
            in_lane[a, k] = road.add_lane(p0 + t * (p1 - p0), w, uniform=True)
        for k in range(n):
            p0, p1 = arm_point(a, B, -(k + 0.5) * w), arm_point(a, B + LANE_LEN, -(k + 0.5) * w)
            out_lane[a, k] = road.add_lane(p0 + t * (p1 - p0), w, uniform=True)
        road.link_neighbours([in_lane[a, k] for k in range(n)])
        road.link_neighbours([out_lane[a, k] for k in range(n)])

    # connectors: straight from every lane, left from lane 0, right from lane n-1
    allowed = {STRAIGHT: range(n), LEFT: (0,), RIGHT: (n - 1,)}
    moves = [(a, k, turn) for a in range(4) for k in range(n) for turn in (STRAIGHT, LEFT, RIGHT) if k in allowed[turn]]
    dest = [((a + TURN_TO[turn]) % 4, {STRAIGHT: k, LEFT: 0, RIGHT: n - 1}[turn]) for a, k, turn in moves]
    starts = np.array([arm_point(a, B, (k + 0.5) * w) for a, k, _ in moves])
    ends = np.array([arm_point(b, B, -(kb + 0.5) * w) for b, kb in dest])
    yaw_in = np.array([ARM_YAW[a] + math.pi for a, _, _ in moves])
    yaw_out = np.array([ARM_YAW[b] for b, _ in dest])
    curves = bezier_connectors(starts, yaw_in, ends, yaw_out, 48)  # (R, 48, 2)
    conns = road.add_lanes_even(curves, w)
    lanes = []
    for (a, k, _), (b, kb), conn in zip(moves, dest, conns):
        road.add_successor(in_lane[a, k], conn)
        road.add_successor(conn, out_lane[b, kb])
        lanes.append((in_lane[a, k], conn, out_lane[b, kb]))
    # one route per connector, sampled every ROUTE_DU m: approach line, connector, exit line
    seg_len = np.hypot(*np.diff(curves, axis=1).transpose(2, 0, 1))
    s_c = np.concatenate([np.zeros((len(moves), 1)), np.cumsum(seg_len, 1)], 1)
    lc = s_c[:, -1:]
    u = ROUTE_DU * np.arange(ROUTE_POINTS)[None]
    d_in = -np.array([e[a] for a, _, _ in moves])[:, None]  # towards the centre
    d_out = np.array([e[b] for b, _ in dest])[:, None]
    xy_in = starts[:, None] + (u - ROUTE_IN)[..., None] * d_in
    xy_out = ends[:, None] + (u - ROUTE_IN - lc)[..., None] * d_out
    seg = np.where(u < ROUTE_IN, 0, np.where(u < ROUTE_IN + lc, 1, 2))
    xy = np.where((seg == 0)[..., None], xy_in, xy_out)
    # connector samples lie in a short window of the route: interpolate only there
    k0 = int(ROUTE_IN // ROUTE_DU)
    k1 = min(ROUTE_POINTS, k0 + int(np.ceil(lc.max() / ROUTE_DU)) + 2)
    xy_c = interp_rows(s_c, curves, np.clip(u[:, k0:k1] - ROUTE_IN, 0.0, lc))
    xy[:, k0:k1] = np.where((seg[:, k0:k1] == 1)[..., None], xy_c, xy[:, k0:k1])
    g = np.gradient(xy, axis=1)
    yaw = np.unwrap(np.arctan2(g[..., 1], g[..., 0]), axis=1)
    lane_at = np.take_along_axis(np.array(lanes), seg, 1).astype(np.int32)
    c_tables = [{li: 0.0, lcn: ROUTE_IN, lo: ROUTE_IN + float(lc[i, 0])} for i, (li, lcn, lo) in enumerate(lanes)]
    ids = road.add_routes(xy, yaw, 0.0, lane_at, c_tables)
    road.route_stop[ids] = ROUTE_IN
    routes = dict(zip(moves, ids))
    road.finish()

    road.polygons.append(_outline(W, rk, B + EXTENT))
    road.sdf_shape = ("cross", (np.zeros(2), 0.0, W, rk))

    # parked cars in wide shoulders (a parking lane), cones at the kerb otherwise
    spots = []
    for a in range(4):
        for sgn in (1.0, -1.0):  # +: beside incoming lanes, -: beside outgoing lanes
            for _ in range(rng.randint(0, 2)):
                r = rng.uniform(B + 8.0, B + 90.0)
                heading = ARM_YAW[a] + (math.pi if sgn > 0 else 0.0)
                if sh >= 2.3:
                    length, width, off = rng.uniform(4.2, 5.0), rng.uniform(1.75, 1.95), n * w + sh / 2
                else:
                    length, width, off = 0.5, 0.5, W - 0.35
                p = arm_point(a, r, sgn * off)
                spots.append((float(p[0]), float(p[1]), heading + rng.uniform(-0.05, 0.05), length, width))
    road.parking = spots
    road.info = dict(n=n, lane_width=w, B=B, W=W, rk=rk, routes=routes, in_lane=in_lane, out_lane=out_lane)
    return road
