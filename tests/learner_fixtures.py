"""Small hand-built scenario banks and configs shared by the learner tests."""

from __future__ import annotations

from builders import bank_of, straight_road

from agents.train_config import load_config

TINY = ["network.hidden=32", "env.num_obs_agents=2", "env.num_lane_points=4", "env.num_route_points=4",
        "daa.enabled=false", "ctg.enabled=false", "eval.videos=0", "log.progress=false"]  # fmt: skip


def tiny_config(*overrides: str):
    return load_config(None, TINY + list(overrides))


def lead_car_bank(gaps=(15.0, 20.0, 25.0, 30.0), T: int = 41):
    """Ego logged at 10 m/s straight into a 4 m/s lead car in its lane: following the log
    collides, braking avoids it (an easy set RL must improve on)."""
    return bank_of(*[straight_road(T=T, A=2, speed=10.0, agents=[(g, 0.0, 0.0, 4.0)]) for g in gaps])


def speeds_bank(speeds=(6.0, 8.0, 10.0, 12.0), T: int = 41):
    return bank_of(*[straight_road(T=T, A=2, speed=s) for s in speeds])
