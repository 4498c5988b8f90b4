"""`RoadMap`: one generated road as lane slots (the Scenario's lane graph) plus routes.

Lanes are what a Scenario stores. Routes are the generator's private driving paths:
a route chains lanes (approach -> connector -> exit, or one highway lane) and is
sampled every `ROUTE_DU` m along its own arc parameter `u` (`ROUTE_POINTS` samples,
`ROUTE_SLOTS` routes per scenario), with per-sample tables the traffic model reads:
  route_lane:  lane slot the route runs in at each sample,
  route_lane2: a second lane a car there also blocks (a tapering ramp), or -1,
  route_watch2: an extra lane whose cars count as leaders there (merge gap search),
  route_c:     (R, LANE_BITS) route u at which each lane's own parameter is 0, so a car on
               lane l at lane parameter p sits at u = c[l] + p in this route's frame,
  route_vlim:  speed limit from curvature, already braked ahead of curves.
All coordinates are in the scene frame until `transform` moves them into the world.
"""

from __future__ import annotations

import numpy as np

from jaxsim.procedural.curves import arc_lengths, resample, rotation

ROUTE_SLOTS = 16
ROUTE_POINTS = 301
ROUTE_DU = 2.0  # m between route samples
LANE_BITS = 32  # the generator never uses lane ids >= 32 (bit masks fit in int64)
LANE_SPACING = 2.0  # m, densest lane polyline spacing (long lanes use all P points)
LAT_ACCEL = 2.5  # m/s^2 comfortable lateral acceleration for the curve speed limit
CURVE_DECEL = 1.5  # m/s^2 braking used to slow down ahead of curves


class RoadMap:
    """Lanes, routes, drivable polygons and parking spots of one scenario (numpy)."""

    def __init__(self, layout: int, max_lanes: int, lane_points: int):
        L, P, R, K = max_lanes, lane_points, ROUTE_SLOTS, ROUTE_POINTS
        self.layout = int(layout)
        self.lane_points = np.zeros((L, P, 2))
        self.lane_num_points = np.zeros(L, np.int32)
        self.lane_width = np.zeros(L)
        self.lane_left = np.full(L, -1, np.int32)
        self.lane_right = np.full(L, -1, np.int32)
        self.lane_succ = np.full((L, 3), -1, np.int32)
        self.num_lanes = 0
        self.route_xy = np.zeros((R, K, 2))
        self.route_yaw = np.zeros((R, K))
        self.route_u0 = np.zeros(R)
        self.route_lane = np.full((R, K), -1, np.int32)
        self.route_lane2 = np.full((R, K), -1, np.int32)
        self.route_watch2 = np.full((R, K), -1, np.int32)
        self.route_mask = np.zeros(R, np.int64)
        self.route_c = np.zeros((R, LANE_BITS))
        self.route_stop = np.full(R, np.inf)  # u of the stop line, inf = none
        self.route_red = np.zeros(R)  # red light until this time (s) at route_stop
        self.route_vlim = np.full((R, K), 40.0)
        self.route_left = np.full(R, -1, np.int32)  # neighbour routes for lane changes
        self.route_right = np.full(R, -1, np.int32)
        self.num_routes = 0
        self.polygons: list[np.ndarray] = []  # drivable area, closed polygons (n, 2)
        self.parking: list[tuple] = []  # candidate static boxes (x, y, yaw, length, width)
        # closed-form drivable area, if any: ("bands", (point, heading, [(lo, hi), ...])) or
        # ("cross", (center, heading, half_width, kerb_radius)); None = rasterise polygons
        self.sdf_shape: tuple | None = None
        self.info: dict = {}  # layout facts the traffic placement needs

    # ------------------------------------------------------------------ lanes
    def add_lane(self, points: np.ndarray, width: float, uniform: bool = False) -> int:
        """Store a centreline (n, 2); returns its slot.

        Unless `uniform` (points already evenly spaced, n <= P), it is resampled evenly
        with as many points as fit, but no closer than LANE_SPACING m.
        """
        idx = self.num_lanes
        if idx >= min(len(self.lane_width), LANE_BITS):
            raise ValueError(f"layout needs more than {idx} lanes; raise max_lanes")
        P = self.lane_points.shape[1]
        if uniform and len(points) <= P:
            pts = points
        else:
            length = arc_lengths(points)[-1]
            pts = resample(points, num=int(min(P, max(2, np.ceil(length / LANE_SPACING) + 1))))
        num = len(pts)
        self.lane_points[idx, :num] = pts
        self.lane_points[idx, num:] = pts[-1]
        self.lane_num_points[idx] = num
        self.lane_width[idx] = width
        self.num_lanes += 1
        return idx

    def add_lanes_even(self, curves: np.ndarray, width: float) -> list[int]:
        """Store dense centrelines (n, k, 2) resampled evenly (batched version of add_lane)."""
        from jaxsim.procedural.curves import interp_rows

        n, P = len(curves), self.lane_points.shape[1]
        idx = self.num_lanes
        if idx + n > min(len(self.lane_width), LANE_BITS):
            raise ValueError(f"layout needs more than {idx + n - 1} lanes; raise max_lanes")
        s = np.concatenate([np.zeros((n, 1)), np.cumsum(np.hypot(*np.diff(curves, axis=1).transpose(2, 0, 1)), 1)], 1)
        num = np.clip(np.ceil(s[:, -1] / LANE_SPACING) + 1, 2, P).astype(np.int32)
        # evenly spaced stations, the last one repeated as padding
        sq = s[:, -1:] * np.minimum(np.arange(P)[None] / (num[:, None] - 1), 1.0)
        self.lane_points[idx : idx + n] = interp_rows(s, curves, sq)
        self.lane_num_points[idx : idx + n] = num
        self.lane_width[idx : idx + n] = width
        self.num_lanes += n
        return list(range(idx, idx + n))

    def link_neighbours(self, lanes_left_to_right: list[int]) -> None:
        """Same-direction lanes ordered from leftmost to rightmost become neighbours."""
        for a, b in zip(lanes_left_to_right[:-1], lanes_left_to_right[1:]):
            self.lane_right[a] = b
            self.lane_left[b] = a

    def add_successor(self, lane: int, succ: int) -> None:
        row = self.lane_succ[lane]
        free = np.nonzero(row < 0)[0]
        row[free[0]] = succ

    # ----------------------------------------------------------------- routes
    def add_routes(
        self, xy: np.ndarray, yaw: np.ndarray, u0, lane_at: np.ndarray, c: list[dict] | None = None
    ) -> list[int]:
        """Store routes sampled every ROUTE_DU m: xy (n, K, 2), unwrapped yaw (n, K), lane_at (n, K).

        u0: route parameter of sample 0, scalar or (n,). c: per route, lane -> route u of
        that lane's parameter 0 (default: 0 for every lane, i.e. lanes parameterised by a
        shared station, as on highways). Call `finish` after the last route.
        """
        n = len(xy)
        r = self.num_routes
        if r + n > ROUTE_SLOTS:
            raise ValueError(f"layout needs more than {ROUTE_SLOTS} routes")
        self.route_xy[r : r + n] = xy
        self.route_yaw[r : r + n] = yaw
        self.route_u0[r : r + n] = u0
        self.route_lane[r : r + n] = lane_at
        for i, table in enumerate(c or []):
            for lane, off in table.items():
                self.route_c[r + i, lane] = off
        self.num_routes += n
        return list(range(r, r + n))

    def finish(self) -> None:
        """Lane bit masks and curve speed limits of all routes (batched)."""
        lanes = self.route_lane
        bits = np.where(lanes >= 0, np.left_shift(np.int64(1), np.maximum(lanes, 0).astype(np.int64)), np.int64(0))
        self.route_mask = np.bitwise_or.reduce(bits, axis=1)
        # curvature speed limit, then v^2 <= vlim_j^2 + 2 b (u_j - u) for every j ahead
        kappa = np.abs(np.gradient(self.route_yaw, ROUTE_DU, axis=1))
        vlim2 = LAT_ACCEL / np.maximum(kappa, 1e-4)
        u = np.arange(ROUTE_POINTS) * ROUTE_DU
        q = np.minimum.accumulate((vlim2 + 2 * CURVE_DECEL * u)[:, ::-1], axis=1)[:, ::-1]
        self.route_vlim = np.minimum(np.sqrt(np.maximum(q - 2 * CURVE_DECEL * u, 0.0)), 40.0)

    def route_point(self, r: int, u: float) -> tuple[np.ndarray, float]:
        """Position (2,) and yaw at route parameter u (linear interpolation)."""
        k = (u - self.route_u0[r]) / ROUTE_DU
        i = int(np.clip(np.floor(k), 0, ROUTE_POINTS - 2))
        f = float(np.clip(k - i, 0.0, 1.0))
        xy = self.route_xy[r, i] * (1 - f) + self.route_xy[r, i + 1] * f
        return xy, float(self.route_yaw[r, i] * (1 - f) + self.route_yaw[r, i + 1] * f)

    # -------------------------------------------------------------- transform
    def transform(self, theta: float, shift: np.ndarray) -> None:
        """Rotate by theta about the scene origin, then translate by shift (2,)."""
        rot = rotation(theta).T  # row vectors: p @ rot.T

        def move(p):
            return p @ rot + shift

        n = self.num_lanes
        self.lane_points[:n] = move(self.lane_points[:n])
        r = self.num_routes
        self.route_xy[:r] = move(self.route_xy[:r])
        self.route_yaw[:r] += theta
        self.polygons = [move(p) for p in self.polygons]
        self.parking = [(*move(np.array(b[:2])), b[2] + theta, b[3], b[4]) for b in self.parking]
        if self.sdf_shape:
            kind, (point, heading, *rest) = self.sdf_shape
            self.sdf_shape = (kind, (move(np.asarray(point, float)), heading + theta, *rest))
