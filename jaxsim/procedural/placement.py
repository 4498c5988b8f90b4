"""Initial traffic shared by all layouts: vehicle sampling, queues along routes, packing.

A candidate agent is a dict; `pack` keeps the ego plus the `A` candidates that come
closest to the ego (constant-speed estimate) and writes the fixed-size `AgentSpec`
arrays (M = 1 + A slots, slot 0 the ego) the batched traffic model runs on.
"""

from __future__ import annotations

import math

import numpy as np

from jaxsim.procedural.roadmap import ROUTE_DU, ROUTE_POINTS, RoadMap
from jaxsim.scenario import AgentType

MODE_PAD, MODE_ROUTE, MODE_FREE = 0, 1, 2  # free: constant velocity, no route (pedestrians)
FOLLOW_DECEL = 3.0  # m/s^2 a placed follower can brake at to stop behind its leader

# AgentSpec fields (float unless listed in INT_FIELDS), all (M,); `free` is (M, 4)
SPEC_FIELDS = (
    "mode",
    "type",
    "route",
    "u0",
    "v0",
    "v_des",
    "length",
    "width",
    "idm_a",
    "idm_b",
    "idm_t",
    "idm_s0",
    "brake_t",
    "brake_v",
    "brake_rate",
    "lc_t",
    "lc_route",
    "lc_dd",
    "lc_dur",
)
INT_FIELDS = ("mode", "type", "route", "lc_route")
DEFAULTS = dict(brake_t=np.inf, brake_v=0.0, brake_rate=0.0, lc_t=np.inf, lc_route=-1, lc_dd=0.0, lc_dur=4.0)


def vehicle(rng, **kw) -> dict:
    """A car (82%), van (10%) or truck (8%) with IDM parameters; `kw` overrides fields."""
    x = rng.random()
    if x < 0.08:
        car = dict(
            length=rng.uniform(8.0, 12.0),
            width=rng.uniform(2.4, 2.6),
            idm_a=rng.uniform(0.6, 1.0),
            idm_b=rng.uniform(1.5, 2.5),
            idm_t=rng.uniform(1.5, 2.2),
            idm_s0=rng.uniform(2.5, 3.5),
        )
    else:
        van = x < 0.18
        car = dict(
            length=rng.uniform(5.2, 6.2) if van else rng.uniform(4.2, 5.0),
            width=rng.uniform(1.95, 2.15) if van else rng.uniform(1.75, 1.98),
            idm_a=rng.uniform(1.0, 2.0),
            idm_b=rng.uniform(1.8, 3.0),
            idm_t=rng.uniform(0.9, 1.7),
            idm_s0=rng.uniform(1.5, 3.0),
        )
    car.update(mode=MODE_ROUTE, type=int(AgentType.VEHICLE), **DEFAULTS)
    car.update(kw)
    return car


def follower_speed(v: float, lead: dict | None, gap: float, s0: float) -> float:
    """Cap a follower's speed so it can still stop behind `lead` at FOLLOW_DECEL."""
    if lead is None:
        return v
    return min(v, lead["v0"] + math.sqrt(2.0 * FOLLOW_DECEL * max(gap - s0, 0.0)))


def fill_back(
    rng,
    out: list,
    route: int,
    lead: dict | None,
    u_front: float,
    u_back: float,
    v_flow: float,
    gap_mean: float,
    stopped_within: float = 0.0,
) -> None:
    """Append cars on `route` from behind `lead` (or from u_front) back to u_back.

    Speeds are v_flow +- noise, capped so each car can stop behind the one ahead. Cars
    whose gap is under `stopped_within` m form a standing queue (speed 0, short gaps).
    """
    u_edge = lead["u0"] - 0.5 * lead["length"] if lead else u_front
    for _ in range(64):
        car = vehicle(rng, route=route)
        v = max(0.0, v_flow + rng.normal(0.0, 1.0))
        gap = car["idm_s0"] + v * car["idm_t"] * rng.uniform(0.8, 1.6) + rng.exponential(gap_mean)
        if lead is None:
            gap = rng.exponential(gap_mean)
        if lead is not None and lead["v0"] == 0.0 and gap < stopped_within:
            v, gap = 0.0, car["idm_s0"] * rng.uniform(0.9, 1.3)
        u = u_edge - gap - 0.5 * car["length"]
        if u < u_back:
            return
        car.update(u0=u, v0=follower_speed(v, lead, gap, car["idm_s0"]), v_des=max(v_flow + rng.normal(0.0, 1.5), 3.0))
        out.append(car)
        lead, u_edge = car, u - 0.5 * car["length"]


def fill_forward(rng, out: list, route: int, rear: dict, u_front: float, v_flow: float, gap_mean: float) -> None:
    """Append cars on `route` ahead of `rear` up to u_front (speeds let `rear` follow them)."""
    u_edge = rear["u0"] + 0.5 * rear["length"]
    for _ in range(64):
        car = vehicle(rng, route=route)
        v = max(0.0, v_flow + rng.normal(0.0, 1.0))
        gap = rear["idm_s0"] + rear["v0"] * rear["idm_t"] * rng.uniform(0.8, 1.6) + rng.exponential(gap_mean)
        u = u_edge + gap + 0.5 * car["length"]
        if u > u_front:
            return
        # the car behind must be able to stop: v_rear <= v + sqrt(2 b (gap - s0))
        v = max(v, rear["v0"] - math.sqrt(2.0 * FOLLOW_DECEL * max(gap - rear["idm_s0"], 0.0)))
        car.update(u0=u, v0=v, v_des=max(v_flow + rng.normal(0.0, 1.5), 3.0))
        out.append(car)
        rear, u_edge = car, u + 0.5 * car["length"]


def route_points(road: RoadMap, routes: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Positions (..., 2) of route parameters u on routes (both (...))."""
    k = np.clip((u - road.route_u0[routes]) / ROUTE_DU, 0.0, ROUTE_POINTS - 1.001)
    i = k.astype(int)
    f = (k - i)[..., None]
    return road.route_xy[routes, i] * (1 - f) + road.route_xy[routes, i + 1] * f


def pack(road: RoadMap, ego: dict, cands: list[dict], num_agents: int, sensor_range: float, duration: float) -> dict:
    """Fixed-size AgentSpec arrays (M = 1 + num_agents): ego in slot 0, nearest candidates after."""
    times = np.linspace(0.0, duration, 9)
    ego_xy = route_points(road, np.full(9, ego["route"]), ego["u0"] + ego["v_des"] * 0.8 * times)
    keep = []
    if cands:
        on_route = [c for c in cands if c["mode"] == MODE_ROUTE]
        free = [c for c in cands if c["mode"] == MODE_FREE]
        dmin = []
        if on_route:
            r = np.array([c["route"] for c in on_route])
            u = np.array([c["u0"] for c in on_route])[:, None] + np.array([c["v0"] for c in on_route])[:, None] * times
            xy = route_points(road, np.repeat(r[:, None], 9, 1), u)
            dmin += list(np.min(np.hypot(*(xy - ego_xy).transpose(2, 0, 1)), axis=1))
        for c in free:
            f = c["free"]
            xy = np.stack([f[0] + f[3] * math.cos(f[2]) * times, f[1] + f[3] * math.sin(f[2]) * times], -1)
            dmin.append(float(np.min(np.hypot(*(xy - ego_xy).T))))
        order = np.argsort(np.array(dmin), kind="stable")
        allc = on_route + free
        keep = [allc[i] for i in order[:num_agents] if dmin[i] < sensor_range + 15.0]
    M = 1 + num_agents
    spec = {k: np.zeros(M, np.int32 if k in INT_FIELDS else np.float64) for k in SPEC_FIELDS}
    spec["free"] = np.zeros((M, 4))
    for k in ("brake_t", "lc_t"):
        spec[k][:] = np.inf
    spec["lc_route"][:] = -1
    for slot, c in enumerate([ego] + keep):
        for k in SPEC_FIELDS:
            if k in c:
                spec[k][slot] = c[k]
        if "free" in c:
            spec["free"][slot] = c["free"]
    return spec
