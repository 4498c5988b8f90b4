"""Initial traffic at the four-way intersection, with a conflict-free signal phase.

The ego (from the south arm) goes straight, left or right. Phases: "protected" gives
the ego's arm green for every movement while all other arms wait at red; "permissive"
gives the ego's arm and the oncoming arm green for straight and right turns only. The
cross arms are red for the whole log, so no green movements cross. The ego's arm may
start at red and turn green at `green_at` s. Red arms get standing queues at the stop
line and approaching cars that can still stop; exit lanes get cars driving away, and
pedestrians walk along the sidewalks.
"""

from __future__ import annotations

import math

import numpy as np

from jaxsim.procedural.intersection import ARM_YAW, LEFT, RIGHT, ROUTE_IN, STRAIGHT
from jaxsim.procedural.placement import MODE_FREE, fill_back, vehicle
from jaxsim.procedural.roadmap import RoadMap
from jaxsim.scenario import AgentType

RED_ALL_LOG = 1e9


def place_intersection(rng, road: RoadMap, ego_speed: float, duration: float, density: float):
    info = road.info
    n, B, W, routes = info["n"], info["B"], info["W"], info["routes"]
    turn = (STRAIGHT, LEFT, RIGHT)[rng.weighted((0.4, 0.3, 0.3))]
    k_e = {STRAIGHT: rng.randint(0, n - 1), LEFT: 0, RIGHT: n - 1}[turn]
    protected = turn == LEFT or rng.chance(0.3)
    green_at = 0.0 if rng.chance(0.65) else rng.uniform(1.0, 4.0)
    red = {0: green_at, 1: RED_ALL_LOG, 2: RED_ALL_LOG if protected else green_at, 3: RED_ALL_LOG}
    for (a, _k, _t), r in routes.items():
        road.route_red[r] = red[a]

    def lane_turns(a, k):
        allowed = [t for t in (STRAIGHT, LEFT, RIGHT) if (a, k, t) in routes]
        if a == 2 and not protected:
            allowed = [t for t in allowed if t != LEFT]
        return allowed

    def pick_route(a, k):
        return routes[a, k, rng.choice(lane_turns(a, k))]

    # ---- ego ----
    ego_route = routes[0, k_e, turn]
    v_des = min(ego_speed, 14.0)
    dist = rng.uniform(10.0, 45.0)
    u_e = ROUTE_IN - dist - 2.4
    cands: list[dict] = []
    ego = vehicle(
        rng,
        route=ego_route,
        u0=u_e,
        v_des=v_des,
        length=4.8,
        width=2.0,
        idm_a=rng.uniform(1.2, 2.0),
        idm_b=rng.uniform(2.0, 3.0),
        idm_t=rng.uniform(1.0, 1.6),
        idm_s0=rng.uniform(2.0, 3.0),
    )
    v0 = v_des * rng.uniform(0.6, 1.0)
    v0 = min(v0, float(road.route_vlim[ego_route, int(u_e / 2.0)]))
    if green_at > 0:
        # red at the start: a standing queue ahead of the ego, which can still stop
        queue_front = ROUTE_IN - rng.uniform(0.5, 2.0)
        for _ in range(rng.randint(0, 2)):
            car = vehicle(rng, route=pick_route(0, k_e), v0=0.0, v_des=rng.uniform(8.0, 13.0))
            car["u0"] = queue_front - 0.5 * car["length"]
            if car["u0"] - 0.5 * car["length"] < u_e + 2.4 + 6.0:
                break
            cands.append(car)
            queue_front = car["u0"] - 0.5 * car["length"] - car["idm_s0"] * rng.uniform(0.9, 1.3)
        v0 = min(v0, math.sqrt(2.0 * 2.0 * max(queue_front - (u_e + 2.4) - 4.0, 0.0)))
    elif rng.chance(0.6):
        car = vehicle(rng, route=pick_route(0, k_e), v_des=rng.uniform(8.0, 13.0))
        gap = ego["idm_s0"] + v0 * ego["idm_t"] * rng.uniform(0.9, 2.0) + rng.exponential(8.0)
        car.update(u0=u_e + 2.4 + gap + 0.5 * car["length"], v0=min(v0 * rng.uniform(0.8, 1.2), car["v_des"]))
        car["v0"] = min(car["v0"], float(road.route_vlim[car["route"], int(car["u0"] / 2.0)]))
        v0 = min(v0, car["v0"] + math.sqrt(2 * 3.0 * max(gap - ego["idm_s0"], 0.0)))
        cands.append(car)
    ego["v0"] = v0
    start = len(cands)
    v_flow = v0 + rng.uniform(0.0, 3.0)
    fill_back(rng, cands, ego_route, ego, 0.0, u_e - 80.0, v_flow, rng.uniform(15.0, 50.0) / density)
    for car in cands[start:]:
        car["route"] = pick_route(0, k_e)

    # ---- other approach lanes ----
    for a in range(4):
        for k in range(n):
            if (a, k) == (0, k_e):
                continue
            flow = rng.uniform(7.0, 13.0)
            gap_mean = rng.uniform(15.0, 60.0) / density
            if red[a] > 0:  # standing queue, then cars that can stop behind it
                lead = None
                front = ROUTE_IN - rng.uniform(0.5, 2.0)
                for _ in range(rng.randint(0, 3)):
                    car = vehicle(rng, route=pick_route(a, k), v0=0.0, v_des=flow)
                    car["u0"] = front - 0.5 * car["length"]
                    cands.append(car)
                    lead, front = car, car["u0"] - 0.5 * car["length"] - car["idm_s0"] * rng.uniform(0.9, 1.3)
                if lead is None:  # a virtual stopped car at the line keeps approach speeds stoppable
                    lead = dict(u0=ROUTE_IN + 2.0, length=4.0, v0=0.0)
                start = len(cands)
                fill_back(
                    rng,
                    cands,
                    routes[a, k, lane_turns(a, k)[0]],
                    lead,
                    0.0,
                    ROUTE_IN - 200.0,
                    flow,
                    gap_mean,
                    stopped_within=8.0,
                )
            else:
                start = len(cands)
                fill_back(
                    rng,
                    cands,
                    routes[a, k, lane_turns(a, k)[0]],
                    None,
                    ROUTE_IN - 1.0,
                    ROUTE_IN - 200.0,
                    flow,
                    gap_mean,
                )
            for car in cands[start:]:  # cars sharing an approach lane pick their own movement
                car["route"] = pick_route(a, k)

    # ---- cars leaving on exit lanes (any route into that lane) ----
    into = {}
    for r in routes.values():
        into.setdefault(int(road.route_lane[r, -1]), []).append(r)
    for out, rs in into.items():
        dist_out = rng.uniform(12.0, 40.0)
        for _ in range(rng.randint(0, 2) if rng.chance(0.5 * min(density, 2.0)) else 0):
            r = rng.choice(rs)
            car = vehicle(rng, route=r, v_des=rng.uniform(9.0, 14.0))
            car["v0"] = car["v_des"] * rng.uniform(0.7, 1.0)
            car["u0"] = float(road.route_c[r, out]) + dist_out
            cands.append(car)
            dist_out += car["length"] + rng.uniform(15.0, 40.0)

    # ---- pedestrians on the sidewalks ----
    for _ in range(rng.randint(0, 4)):
        a = rng.randint(0, 3)
        side = rng.choice((-1.0, 1.0))
        r0 = rng.uniform(B + 2.0, B + 40.0)
        inward = r0 > B + 14.0 and rng.chance(0.5)
        e = np.array([math.cos(ARM_YAW[a]), math.sin(ARM_YAW[a])])
        nl = np.array([-e[1], e[0]])
        p = r0 * e + side * (W + rng.uniform(1.0, 2.5)) * nl
        yaw = ARM_YAW[a] + (math.pi if inward else 0.0)
        size = rng.uniform(0.5, 0.7)
        cands.append(
            dict(
                mode=MODE_FREE,
                type=int(AgentType.PEDESTRIAN),
                length=size,
                width=size,
                free=(float(p[0]), float(p[1]), yaw, rng.uniform(0.8, 1.6)),
            )
        )
    road.info.update(turn=turn, protected=protected, green_at=green_at)
    return ego, cands
