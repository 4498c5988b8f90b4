"""Traffic actors: what drives every non-ego agent of one env.

Per env (`EnvParams.traffic.actor`, data, so one vmapped batch mixes them):
  LOG  log replay: each agent is where the log has it at step t (RAD-comparable; default).
  IDM  route-following IDM: each agent keeps its logged path (a polyline through its
       logged positions) and only its *speed along it* reacts. Its reference is its own
       logged self: with nothing in the way it is exactly at its log pose; behind a
       slower leader on its path (another agent, the adversary or the ego) its speed is
       min(speed that reaches its log pose at t+1, v + a_IDM dt), with a_IDM the IDM
       interaction term `jaxsim.drivers.idm_follow_accel` against that leader and
       decelerations bounded by `max_decel`; once clear it accelerates back onto its
       log (at most `catch_up` m/s above the logged speed) and snaps to it on arrival.
       It never leaves its path and never gets ahead of its log; heading from the path.
On top of either, the DAA adversary (`jaxsim.daa`) drives its one slot when
`EnvParams.daa.enabled` (`overlay_adversary`).

"The leader on its path": the nearest valid object ahead whose centre lies within a
corridor (half widths + `margin`) around the agent's path ahead, the path approximated
by a parabola through the agent's pose and its logged position `PATH_LOOKAHEAD` steps
on (one gather per agent instead of a projection onto every polyline).

Cost: `TrafficParams.reactive` is static. False (config `env.traffic: log`) traces no
IDM code and carries an empty `TrafficState`, so the log-replay step is unchanged. True
adds, per agent, two gathers of its own log (a `WALK + 2`-row window for the walk and the
row `PATH_LOOKAHEAD` steps on, each with its valid flags) and a test against the A+1
objects, looped over the objects so that no (A, A+1) temporaries are stored
(`leader_accel`). 2-core CPU, `bench sim --traffic log,idm --envs 4096`: IDM/log step
time 3.7x -> 2.7x without observation, 1.9x -> 1.5x with the vector observation.

A lagging agent advances at most `WALK` log segments per step: behind a stretch where
its log stood still (zero-length segments) it may pause for a few steps; it never
jumps. An agent whose log point is not valid snaps back to its log.
"""

from __future__ import annotations

import dataclasses
import enum

import jax
import jax.numpy as jnp
from flax import struct

from jaxsim.config_utils import check_choice, check_range
from jaxsim.drivers import idm_gap_ratio
from jaxsim.geometry import to_local

WALK = 4  # log segments an IDM agent may advance per log step
PATH_LOOKAHEAD = 15  # log steps ahead defining the path corridor (1.5 s at 10 Hz)
MAX_RANGE = 60.0  # m, leaders farther than this are ignored
STOPPED = 0.05  # m/s
LEADER_UNROLL = 11  # objects per iteration of the leader loop (33 objects: 3 iterations)


class Actor(enum.IntEnum):
    LOG = 0
    IDM = 1


ACTOR_NAMES = tuple(a.name.lower() for a in Actor)

# (low, high) allowed for each IDM parameter (config validation names these)
IDM_RANGES = {
    "time_gap": (0.1, 5.0),  # s
    "min_gap": (0.5, 20.0),  # m, bumper to bumper
    "max_accel": (0.1, 10.0),  # m/s^2
    "comfort_decel": (0.1, 10.0),  # m/s^2
    "max_decel": (0.5, 15.0),  # m/s^2
    "margin": (0.0, 3.0),  # m added to the half widths of the corridor
    "catch_up": (0.0, 10.0),  # m/s above the logged speed while catching up with the log
}


@struct.dataclass
class TrafficParams:
    """Per-env traffic settings in `EnvParams.traffic` (each () float32 unless noted).

    actor: () int32 `Actor` of this env's agents. IDM: time_gap s, min_gap m,
    max_accel / comfort_decel / max_decel m/s^2, margin m, catch_up m/s (`IDM_RANGES`).
    reactive (static): trace the IDM code at all; False = log replay for every env.
    idm_fraction (static): share of a batch `mix_actors` gives the IDM actor.
    """

    actor: jnp.ndarray = 0
    time_gap: jnp.ndarray = 1.0
    min_gap: jnp.ndarray = 1.5
    max_accel: jnp.ndarray = 2.0
    comfort_decel: jnp.ndarray = 3.0
    max_decel: jnp.ndarray = 8.0
    margin: jnp.ndarray = 0.3
    catch_up: jnp.ndarray = 3.0
    reactive: bool = struct.field(pytree_node=False, default=False)
    idm_fraction: float = struct.field(pytree_node=False, default=1.0)


@struct.dataclass
class TrafficState:
    """Agent states of one env: (A,) each, pose (A, 4); all (0,) when not reactive.

    k: int32 log index at or behind the agent on its path; frac: m past point k along
    segment (k, k+1); pose [x, y, yaw, speed]; valid: shown this step.
    """

    k: jnp.ndarray
    frac: jnp.ndarray
    pose: jnp.ndarray
    valid: jnp.ndarray

    @classmethod
    def empty(cls) -> "TrafficState":
        return cls(jnp.zeros((0,), jnp.int32), jnp.zeros((0,)), jnp.zeros((0, 4)), jnp.zeros((0,), bool))


def init(params: TrafficParams, bank, i) -> TrafficState:
    """Every agent at its log pose at step 0."""
    if not params.reactive:
        return TrafficState.empty()
    a = bank.agent_traj.shape[2]
    return TrafficState(jnp.zeros((a,), jnp.int32), jnp.zeros((a,)), bank.agent_traj[i, 0], bank.agent_valid[i, 0])


def log_agents(bank, i, t):
    """Log replay at step t: (states (A, 4), valid (A,), sizes (A, 2))."""
    t = jnp.minimum(t, bank.num_steps - 1)
    return bank.agent_traj[i, t], bank.agent_valid[i, t], bank.agent_size[i]


def overlay_adversary(agents, valid, sizes, adv):
    """The DAA adversary actor drives its slot (if active): same outputs as `log_agents`."""
    hit = (jnp.arange(agents.shape[0]) == adv.slot) & adv.active
    agents = jnp.where(hit[:, None], adv.pose, agents)
    valid = jnp.where(hit, adv.visible, valid)
    sizes = jnp.where(hit[:, None], adv.size, sizes)
    return agents, valid, sizes


def leader_accel(poses, valid, sizes, others, others_valid, others_sizes, ahead_pts, ego, ego_size, params):
    """IDM interaction acceleration (A,) of each agent: the min over the leaders on its
    path (see module docstring) of `idm_follow_accel`; `max_accel` where there is none.

    poses (A, 4), valid (A,), sizes (A, 2): the agents looking for a leader;
    others (A, 4), others_valid (A,), others_sizes (A, 2): the agents as the ego sees them
    (the adversary's slot overlaid), candidates with the ego (4,), ego_size (2,);
    ahead_pts (A, 2) each agent's logged position `PATH_LOOKAHEAD` steps on.

    The min over leaders of a_IDM = max_accel (1 - r^2), r = s*/s (`idm_gap_ratio`), is
    taken at the largest r (0: no leader): one running max, no (A, A+1) accelerations.
    The agent-object test, this step's main cost, is a loop over the A+1 objects, each an
    (A,) test: no (A, A+1) temporaries. It is a `fori_loop` (`LEADER_UNROLL` objects an
    iteration) rather than a Python loop because the loop's end is where XLA stores the
    result: fully unrolled, XLA's CPU fusion copies the whole test into each of the walk's
    elementwise fusions that use it (measured ~50x slower than the loop).
    """
    objs = jnp.concatenate([others, ego[None]], 0)  # (A+1, 4)
    osz = jnp.concatenate([others_sizes, ego_size[None]], 0)
    # crossing and oncoming agents are not followed (their logs already keep clear), the ego
    # always is, invalid objects never: one threshold per object on cos(dyaw) says all three
    min_cos = jnp.concatenate([jnp.where(others_valid, 0.5, jnp.inf), jnp.full((1,), -jnp.inf)])
    # per agent and per object once: trigonometry, the path parabola y = c x^2 through the
    # ahead point (lateral offset of the path at distance x)
    ca, sa = jnp.cos(poses[:, 2]), jnp.sin(poses[:, 2])  # (A,)
    co, so = jnp.cos(objs[:, 2]), jnp.sin(objs[:, 2])  # (A+1,)
    pa = to_local(ahead_pts, poses[:, :3])  # (A, 2)
    curv = jnp.where(pa[:, 0] > 2.0, pa[:, 1] / jnp.maximum(pa[:, 0], 2.0) ** 2, 0.0)
    x_max = jnp.maximum(pa[:, 0], 0.0)  # the parabola ends at the ahead point
    v = poses[:, 3]
    a = poses.shape[0]

    def object_j(j, r):
        dx, dy = objs[j, 0] - poses[:, 0], objs[j, 1] - poses[:, 1]
        x, y = ca * dx + sa * dy, ca * dy - sa * dx  # object j in each agent's frame
        path_y = curv * jnp.square(jnp.minimum(x, x_max))
        half_w = 0.5 * (sizes[:, 1] + osz[j, 1]) + params.margin
        reach = 0.5 * (sizes[:, 0] + osz[j, 0])
        cos_dyaw = ca * co[j] + sa * so[j]
        hit = (x > 0.0) & (x < MAX_RANGE) & (jnp.abs(y - path_y) < half_w) & (cos_dyaw > min_cos[j])
        hit = hit & (jnp.arange(a) != j)  # not itself
        closing = v - objs[j, 3] * cos_dyaw
        return jnp.maximum(r, jnp.where(hit, idm_gap_ratio(v, x - reach, closing, params), 0.0))

    r = jax.lax.fori_loop(0, a + 1, object_j, jnp.zeros((a,)), unroll=LEADER_UNROLL)
    r = jnp.where(valid, r, 0.0)
    return params.max_accel * (1.0 - r**2)


def step_idm(ts: TrafficState, params: TrafficParams, bank, i, t, ego, ego_size, poses, valid, sizes, dt):
    """Advance every agent from log step t to t+1 (see module docstring).

    poses/valid/sizes (A, ...): what the agents are at t as the ego sees them (the
    adversary included, as a leader); ego (4,) at t. Envs whose actor is LOG snap to
    the log. Returns the new TrafficState.
    """
    # index the bank in one gather per read ([i, k, cols]): slicing bank.agent_traj[i]
    # first would copy the env's whole (T, A, 4) log every step under vmap
    T, A = bank.agent_valid.shape[-2:]
    cols = jnp.arange(A)
    cap = jnp.minimum(t + 1, T - 1)  # never ahead of the log
    k0 = ts.k
    k_ahead = jnp.minimum(k0 + PATH_LOOKAHEAD, T - 1)
    ahead_ok = bank.agent_valid[i, k_ahead, cols]
    ahead = jnp.where(ahead_ok[:, None], bank.agent_traj[i, k_ahead, cols, :2], ts.pose[:, :2])  # invalid: straight
    acc = leader_accel(ts.pose, ts.valid, bank.agent_size[i], poses, valid, sizes, ahead, ego, ego_size, params)
    acc = jnp.maximum(acc, -params.max_decel)
    v = ts.pose[:, 3]
    log_next = bank.agent_traj[i, cap]  # (A, 4)
    v_new = jnp.clip(v + acc * dt, 0.0, log_next[:, 3] + params.catch_up)
    dist = 0.5 * (v + v_new) * dt
    # walk the logged polyline from (k, frac) by `dist`, at most WALK segments, up to `cap`.
    # Each agent's log rows k..k+WALK+1 come in one gather (not one gather per walk step)
    rows = jnp.minimum(k0[:, None] + jnp.arange(WALK + 2), T - 1)  # (A, WALK+2)
    win = bank.agent_traj[i, rows, cols[:, None]]  # (A, WALK+2, 4)
    win_valid = bank.agent_valid[i, rows, cols[:, None]]
    dw = win[:, 1:, :2] - win[:, :-1, :2]
    seg_w = jnp.sqrt(dw[..., 0] * dw[..., 0] + dw[..., 1] * dw[..., 1] + 1e-12)  # (A, WALK+1) segment lengths
    # an agent that stops stays stopped, so step j of the walk is segment j of the window:
    # `left[j]` is the distance left after j segments (the step-by-step walk's subtractions)
    frac = ts.frac
    left, go, steps = [dist], jnp.ones(A, bool), jnp.zeros_like(k0)
    for j in range(WALK):
        need = seg_w[:, j] - frac if j == 0 else seg_w[:, j]
        go = go & (k0 + j < cap) & (left[-1] >= need)
        steps = steps + go
        left.append(left[-1] - jnp.maximum(need, 0.0))

    def at_end(z, off=0):
        """Window row `steps + off` of z (A, WALK+2, ...); a gather, so XLA stores `steps`
        once instead of recomputing the walk inside every output's fusion (CPU: 1.2x)."""
        idx = (steps + off).reshape((A, 1) + (1,) * (z.ndim - 2))
        return jnp.take_along_axis(z, idx, axis=1)[:, 0]

    here, nxt, valid_k = at_end(win), at_end(win, 1), at_end(win_valid)
    dist = at_end(jnp.stack(left, 1))
    frac = jnp.where(steps == 0, frac, 0.0)
    k = k0 + steps
    p0, yaw0 = here[:, :2], here[:, 2]
    d = nxt[:, :2] - p0
    seg = jnp.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] + 1e-12)
    frac = jnp.where(k < cap, jnp.minimum(frac + dist, seg), 0.0)
    u = jnp.where(seg > 1e-3, frac / seg, 0.0)[:, None]
    yaw = jnp.where(seg > 0.05, jnp.arctan2(d[:, 1], d[:, 0]), yaw0)
    idm_pose = jnp.concatenate([p0 + u * d, yaw[:, None], v_new[:, None]], -1)
    # snap to the log: LOG envs, agents that reached their log, agents off their log's valid steps
    snap = (params.actor != Actor.IDM) | (k >= cap) | ~valid_k
    return TrafficState(
        k=jnp.where(snap, cap, k).astype(jnp.int32),
        frac=jnp.where(snap, 0.0, frac),
        pose=jnp.where(snap[:, None], log_next, idm_pose),
        valid=jnp.where(snap, bank.agent_valid[i, cap], valid_k),
    )


def mix_actors(params, fraction: float | None = None):
    """Batched EnvParams (leading N) with the IDM actor in floor(fraction * N) envs spread
    evenly over the batch (env j is IDM iff floor((j+1) f) > floor(j f)), LOG elsewhere.
    fraction: default `params.traffic.idm_fraction` (config `env.traffic_idm_fraction`).
    Unchanged when traffic is not reactive."""
    tp = params.traffic
    if not tp.reactive:
        return params
    fraction = tp.idm_fraction if fraction is None else fraction
    n = jnp.shape(tp.actor)[0]
    j = jnp.arange(n, dtype=jnp.float32)
    idm = jnp.floor((j + 1) * fraction + 1e-6) > jnp.floor(j * fraction + 1e-6)
    actor = jnp.where(idm, Actor.IDM, Actor.LOG).astype(jnp.int32)
    return params.replace(traffic=tp.replace(actor=actor))


@dataclasses.dataclass(frozen=True)
class IDMConfig:
    """Static, validated IDM values (config section `env.idm`; ranges in `IDM_RANGES`)."""

    time_gap: float = 1.0
    min_gap: float = 1.5
    max_accel: float = 2.0
    comfort_decel: float = 3.0
    max_decel: float = 8.0
    margin: float = 0.3
    catch_up: float = 3.0

    def __post_init__(self):
        for name, (lo, hi) in IDM_RANGES.items():
            check_range(name, getattr(self, name), lo, hi)


def params_from_config(traffic: str, idm: IDMConfig = IDMConfig(), idm_fraction: float = 1.0) -> TrafficParams:
    """TrafficParams for config `env.traffic` ("log" or "idm") with the `env.idm` values."""
    check_choice("traffic", traffic, ACTOR_NAMES)
    check_range("traffic_idm_fraction", idm_fraction, 0.0, 1.0)
    reactive = traffic == "idm"
    vals = {f.name: jnp.float32(getattr(idm, f.name)) for f in dataclasses.fields(idm)}
    return TrafficParams(actor=jnp.int32(Actor.IDM if reactive else Actor.LOG), reactive=reactive,
                         idm_fraction=float(idm_fraction), **vals)  # fmt: skip
