"""Initial traffic on straight, curved and merge roads: the ego, its leader, lane queues.

The ego drives a forward lane (or the ramp), sometimes with a planned lane change; its
leader sometimes brakes hard or drives slowly. Every lane gets a queue of cars around
the ego's stretch of road; oncoming lanes get cars that will pass it; a few cars
change lanes. Returns the ego candidate and the other candidates (see placement.py).
"""

from __future__ import annotations

import numpy as np

from jaxsim.procedural.placement import fill_back, fill_forward, vehicle
from jaxsim.procedural.roadmap import RoadMap


def _plan_lane_change(rng, road: RoadMap, car: dict, w: float, t_range=(0.0, 6.0)) -> None:
    sides = ((road.route_left[car["route"]], w), (road.route_right[car["route"]], -w))
    options = [(r, dd) for r, dd in sides if r >= 0]
    if options:
        r, dd = rng.choice(options)
        car.update(lc_route=int(r), lc_dd=dd, lc_t=rng.uniform(*t_range), lc_dur=rng.uniform(3.5, 5.0))


def place_highway(rng, road: RoadMap, ego_speed: float, duration: float, density: float):
    info = road.info
    w, fwd, opp = info["lane_width"], info["fwd_routes"], info["opp_routes"]
    ramp = info["ramp_route"]
    u_e = info["ego_u0"]
    travel = ego_speed * duration

    if ramp is not None and info["ego_on_ramp"]:
        ego_route = ramp
    elif ramp is not None:
        ego_route = fwd[-1] if rng.chance(0.6) else rng.choice(fwd)
    else:
        ego_route = rng.choice(fwd)
    ego = vehicle(
        rng,
        route=ego_route,
        u0=u_e,
        v_des=ego_speed,
        v0=ego_speed * rng.uniform(0.7, 1.0),
        length=4.8,
        width=2.0,
        idm_a=rng.uniform(1.2, 2.0),
        idm_b=rng.uniform(2.0, 3.0),
        idm_t=rng.uniform(1.0, 1.6),
        idm_s0=rng.uniform(2.0, 3.0),
    )
    ego["v0"] = min(ego["v0"], float(road.route_vlim[ego_route, int(round((u_e - road.route_u0[ego_route]) / 2.0))]))
    if ego_route != ramp and rng.chance(0.35):
        _plan_lane_change(rng, road, ego, w, (0.5, 3.0))

    cands: list[dict] = []
    u_front, u_back = u_e + travel + 60.0, u_e - 90.0
    # ramp cars start before the taper (downstream the ramp route shares the right lane)
    ramp_front = info["taper_s"] - 2.0 if ramp is not None else np.inf
    ego_front = min(u_front, ramp_front) if ego_route == ramp else u_front

    # the ego's lane: maybe a leader that brakes or drives slowly, cars ahead, followers
    # at least ~the IDM desired gap, so the log does not start with a hard brake
    gap = ego["idm_s0"] + ego["v0"] * ego["idm_t"] * rng.uniform(0.9, 2.0) + rng.exponential(10.0)
    if rng.chance(0.8) and u_e + gap + 10.0 < ego_front:
        lead = vehicle(rng, route=ego_route)
        v_lead = ego["v0"] * rng.uniform(0.7, 1.15)
        lead.update(
            u0=u_e + 0.5 * (ego["length"] + lead["length"]) + gap, v0=v_lead, v_des=v_lead * rng.uniform(0.95, 1.2)
        )
        # the ego must be able to stop behind it
        ego["v0"] = min(ego["v0"], v_lead + np.sqrt(2 * 3.0 * max(gap - ego["idm_s0"], 0.0)))
        style = rng.random()
        if style < 0.3:  # brakes (maybe to a stop) during the log
            lead.update(
                brake_t=rng.uniform(0.5, 3.5), brake_v=v_lead * rng.uniform(0.0, 0.5), brake_rate=rng.uniform(2.0, 5.0)
            )
        elif style < 0.55:  # slower leader the ego closes in on
            lead["v_des"] = ego_speed * rng.uniform(0.4, 0.8)
        cands.append(lead)
        fill_forward(rng, cands, ego_route, lead, ego_front, lead["v_des"], rng.uniform(20.0, 80.0) / density)
    else:
        v_flow = ego_speed + rng.uniform(-2.0, 4.0)
        fill_forward(rng, cands, ego_route, ego, ego_front, v_flow, rng.uniform(30.0, 90.0) / density)
    v_flow = ego_speed + rng.uniform(-2.0, 4.0)
    fill_back(rng, cands, ego_route, ego, u_front, u_back, v_flow, rng.uniform(20.0, 70.0) / density)

    # the other forward lanes (and the ramp), whole stretch
    for r in fwd + ([ramp] if ramp is not None else []):
        if r == ego_route:
            continue
        v_flow = float(np.clip(ego_speed + rng.uniform(-4.0, 6.0), 4.0, 26.0))
        gap_mean = rng.uniform(15.0, 70.0) / density
        if r == ramp:  # ramp traffic upstream of the merge point
            v_flow, gap_mean = rng.uniform(9.0, 16.0), rng.uniform(20.0, 60.0) / density
        front = min(u_front + rng.uniform(0.0, 30.0), ramp_front) if r == ramp else u_front + rng.uniform(0.0, 30.0)
        fill_back(rng, cands, r, None, front, u_back - 40.0, v_flow, gap_mean)
    # oncoming lanes: cars that meet the ego within the log (u = -station)
    for r in opp:
        v_flow = float(np.clip(ego_speed + rng.uniform(-3.0, 5.0), 5.0, 25.0))
        front = -(u_e - 60.0)
        back = -(u_e + travel + v_flow * duration + 60.0)
        fill_back(rng, cands, r, None, front, back, v_flow, rng.uniform(25.0, 80.0) / density)

    for car in cands:
        if car["route"] != ramp and rng.chance(0.12):
            _plan_lane_change(rng, road, car, w)
    return ego, cands
