"""Diversity report: do cousins shrink the logs' straight-driving bias?

Compares, for the expert logs alone and for logs plus accepted cousins:
  curvature      per step, yaw change / distance (1/m), steps moving > 0.5 m/s;
  lateral        per trajectory, final position in the start pose's frame (m, + left);
  speed          per step (m/s);
  lateral_action per step, the ego-frame lateral displacement 0.5 s ahead (m): RAD's
                 lateral action a_x, the imitation label whose "straight" bin dominates.
`diversity_report` returns a JSON-ready dict (histograms, summaries, acceptance by
family and rejection reason); `plot_report` draws it to a PNG (matplotlib, Agg).
Host-side numpy; the cousins come from one jitted `sample_cousins` call.
"""

from __future__ import annotations

import numpy as np

from jaxsim.ctg.config import REASON_PRIORITY, Lateral, Speed

STRAIGHT_CURVATURE = 0.01  # 1/m: radius above 100 m counts as straight
SMALL_LATERAL = 1.0  # m: a trajectory ending within 1 m of its start line counts as straight
STRAIGHT_ACTION = 0.0125  # m: RAD's centre lateral anchor bin (61 bins over [-0.75, 0.75])
ACTION_HORIZON = 0.5  # s
MIN_SPEED = 0.5  # m/s: curvature is undefined when standing
BINS = {
    "curvature": np.linspace(-0.25, 0.25, 51),
    "lateral": np.linspace(-40.0, 40.0, 41),
    "speed": np.linspace(0.0, 30.0, 31),
    "lateral_action": np.linspace(-0.75, 0.75, 62),  # edges around RAD's 61 anchors
}


def features(states: np.ndarray, route_len: np.ndarray, dt: np.ndarray) -> dict:
    """Per-step and per-trajectory features of trajectories (M, N, 4) with valid lengths
    (M,) and time steps (M,) -> dict of flat arrays (curvature, lateral, speed)."""
    states = np.asarray(states, np.float64)
    m, n = states.shape[:2]
    steps = np.arange(n)
    dyaw = np.angle(np.exp(1j * np.diff(states[:, :, 2], axis=1)))
    v = states[:, :-1, 3]
    moving = (v > MIN_SPEED) & (steps[None, :-1] < route_len[:, None] - 1)
    curv = dyaw / np.maximum(v, MIN_SPEED) / dt[:, None]
    end = states[np.arange(m), np.maximum(route_len - 1, 0)]
    start = states[:, 0]
    rel = end[:, :2] - start[:, :2]
    lateral = -np.sin(start[:, 2]) * rel[:, 0] + np.cos(start[:, 2]) * rel[:, 1]
    speed_mask = steps[None, :] < route_len[:, None]
    h = np.rint(ACTION_HORIZON / dt).astype(int)[:, None]
    ahead = np.minimum(steps[None, :] + h, n - 1)
    fut = np.take_along_axis(states, ahead[..., None], axis=1)
    d = fut[..., :2] - states[..., :2]
    lat_action = -np.sin(states[..., 2]) * d[..., 0] + np.cos(states[..., 2]) * d[..., 1]
    action_mask = steps[None, :] + h < route_len[:, None]
    return {"curvature": curv[moving], "lateral": lateral, "speed": states[:, :, 3][speed_mask],
            "lateral_action": lat_action[action_mask]}  # fmt: skip


def _summary(x: np.ndarray, name: str) -> dict:
    out = {"count": int(x.size), "mean": float(np.mean(x)) if x.size else 0.0, "std": float(np.std(x)) if x.size else 0.0,
           "p05": float(np.percentile(x, 5)) if x.size else 0.0, "p95": float(np.percentile(x, 95)) if x.size else 0.0}  # fmt: skip
    hist, _ = np.histogram(np.clip(x, BINS[name][0], BINS[name][-1]), BINS[name])
    p = hist / max(hist.sum(), 1)
    out["entropy_bits"] = float(-np.sum(p[p > 0] * np.log2(p[p > 0])))
    return out


def diversity_report(bank, cousins) -> dict:
    """Report for a bank (leading N) and its `Cousins` (N, K, ...) (numpy or jax arrays)."""
    ego = np.asarray(bank.ego_traj)
    n_valid = np.asarray(bank.ego_valid).sum(-1)
    dt = np.asarray(bank.dt)
    log_f = features(ego, n_valid, dt)
    acc = np.asarray(cousins.accepted)
    routes = np.asarray(cousins.route)[acc]
    k_dt = np.broadcast_to(dt[:, None], acc.shape)[acc]
    cous_f = (
        features(routes, np.asarray(cousins.route_len)[acc], k_dt) if acc.any() else {k: np.zeros(0) for k in log_f}
    )
    report: dict = {"num_scenarios": int(ego.shape[0]), "cousins_per_scenario": int(acc.shape[1]),
                    "accepted_cousins": int(acc.sum()), "features": {}}  # fmt: skip
    for name, bins in BINS.items():
        both = np.concatenate([log_f[name], cous_f[name]])
        h_log, _ = np.histogram(np.clip(log_f[name], bins[0], bins[-1]), bins, density=True)
        h_all, _ = np.histogram(np.clip(both, bins[0], bins[-1]), bins, density=True)
        report["features"][name] = {"bins": bins.tolist(), "logs": h_log.tolist(), "logs_plus_cousins": h_all.tolist(),
                                    "logs_summary": _summary(log_f[name], name), "logs_plus_cousins_summary": _summary(both, name)}  # fmt: skip

    def straight(f):
        def frac(x, lim):
            return float(np.mean(np.abs(x) < lim)) if x.size else 0.0

        return {"straight_step_fraction": frac(f["curvature"], STRAIGHT_CURVATURE),
                "small_lateral_fraction": frac(f["lateral"], SMALL_LATERAL),
                "straight_action_fraction": frac(f["lateral_action"], STRAIGHT_ACTION)}  # fmt: skip

    combined = {k: np.concatenate([log_f[k], cous_f[k]]) for k in log_f}
    report["straight_bias"] = {"logs": straight(log_f), "logs_plus_cousins": straight(combined),
                               "thresholds": {"curvature_per_m": STRAIGHT_CURVATURE, "lateral_m": SMALL_LATERAL,
                                              "lateral_action_m": STRAIGHT_ACTION}}  # fmt: skip
    report["acceptance"] = acceptance(cousins)
    return report


def acceptance(cousins) -> dict:
    """Acceptance rate overall, by family, for turns, and counts of each rejection bit."""
    acc = np.asarray(cousins.accepted)
    reasons = np.asarray(cousins.reasons)

    def rate(mask):
        return {"count": int(mask.sum()), "accepted": float(acc[mask].mean()) if mask.any() else None}

    lat, spd, br = np.asarray(cousins.lateral), np.asarray(cousins.speed), np.asarray(cousins.branch)
    return {
        "rate": float(acc.mean()),
        "lateral": {f.name: rate(lat == f) for f in Lateral},
        "speed": {f.name: rate(spd == f) for f in Speed},
        "turn": rate(br > 0),
        "rejections": {r.name: int(np.sum((reasons & int(r)) != 0)) for r in REASON_PRIORITY},
    }


def plot_report(report: dict, path: str) -> None:
    """Four histograms (logs vs logs + cousins) to a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {"curvature": "curvature (1/m), per step", "lateral": "final lateral displacement (m)",
              "speed": "speed (m/s), per step", "lateral_action": "lateral displacement in 0.5 s (RAD a_x, m)"}  # fmt: skip
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.2))
    for ax, (name, f) in zip(axes, report["features"].items()):
        bins = np.asarray(f["bins"])
        ax.stairs(f["logs"], bins, label="logs", linewidth=2)
        ax.stairs(f["logs_plus_cousins"], bins, label="logs + cousins", linewidth=2)
        ax.set_title(titles[name])
        ax.set_ylabel("density")
        if name in ("curvature", "lateral_action"):
            ax.set_yscale("log")
        ax.legend()
    sb = report["straight_bias"]
    fig.suptitle(
        f"straight steps {sb['logs']['straight_step_fraction']:.0%} -> {sb['logs_plus_cousins']['straight_step_fraction']:.0%};"
        f"  |lateral| < 1 m {sb['logs']['small_lateral_fraction']:.0%} -> {sb['logs_plus_cousins']['small_lateral_fraction']:.0%};"
        f"  straight a_x bin {sb['logs']['straight_action_fraction']:.0%} -> {sb['logs_plus_cousins']['straight_action_fraction']:.0%};"
        f"  {report['num_scenarios']} logs, {report['accepted_cousins']} cousins"
        f" ({report['acceptance']['rate']:.0%} accepted)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
