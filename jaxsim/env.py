"""The closed-loop driving environment: pure `reset`/`step` for one env (gymnax style).

    env = DrivingEnv(EnvConfig())
    params = env.default_params(bank)          # EnvParams pytree, bank included
    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)

`DrivingEnv` is the innermost `jaxsim.base.Env`: it implements the contract's primitives
(`reset_state`, `reset_to_state`, `init_state`, `transition`, `observe`), from which
`reset`, `reset_to`, `reset_on_route` and `step` follow. One env is simulated per call;
batch with `jaxsim.wrappers.VmapWrapper`, which keeps the scenario bank unbatched so
thousands of envs share it. The ego moves by the bicycle model; other agents are driven
by traffic actors (`jaxsim.traffic`: log replay, route-following IDM, and the DAA
adversary on top; `current_agents`). Events end the episode (`terminated`); reaching the end of the
log or `max_steps` sets `truncated`.

Checks (validate at the boundary, nothing per step inside jit): an action's shape is
checked when `step` is traced (`jaxsim.actions.ActionError`); a NaN/inf action becomes
the documented safe action of its space (see `jaxsim.actions`), or raises with
`EnvConfig(debug=True)`. `reset_to` with a concrete out-of-range scenario id raises
`ScenarioIndexError`; under `jax.jit`/`vmap` the id is a tracer and cannot be checked,
so it is clamped into [0, N-1] (JAX's indexing rule): check ids before jitting.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from jaxsim import actions as act
from jaxsim import events as ev_lib
from jaxsim import metrics as met
from jaxsim import traffic as trf
from jaxsim.base import Env
from jaxsim.config_utils import check_choice, check_range
from jaxsim.daa.behaviours import AdvState, adversary_step
from jaxsim.daa.params import DAAParams
from jaxsim.events import EventParams
from jaxsim.kinematics import DynamicsParams
from jaxsim.kinematics import step as bicycle_step
from jaxsim.scenario import Scenario


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Static (hashable) environment settings; changing one recompiles.

    action_space: "discrete" (RAD anchors, action = int [i_lat, i_lon]) or
      "continuous" ([accel m/s^2, steer rad], clipped to the limits).
    substeps: log steps simulated per env step (action repeat); events are checked at
      every substep.
    max_steps: cap on env steps per episode (0 = until the end of the log).
    obs: "none", "vector" or "bev" (see jaxsim.observations); "camera" observes like
      "vector" here (the privileged vector: ego-state source and perception target),
      and render_bridge's camera wrappers add the images a camera policy sees.
    obs_gaps: add the vector observation's `gaps` block (lead/follower gap, closing
      speed, inverse TTC, lead/lag against the reference timing; jaxsim.observations).
    debug: check for NaN/inf in the state after every step (slow; raises on the host).
    traffic: "log" (every agent replays its log) or "idm" (route-following IDM actors,
      `jaxsim.traffic`); traffic_idm_fraction: share of envs in a batch that get IDM
      actors when traffic is "idm" (the rest replay logs; `traffic.mix_actors`);
      idm: the IDM values (`jaxsim.traffic.IDMConfig`).
    """

    action_space: str = "discrete"
    substeps: int = 1
    max_steps: int = 0
    obs: str = "vector"
    num_obs_agents: int = 8
    num_route_points: int = 10
    num_lane_points: int = 10
    bev_size: int = 64
    bev_range: float = 40.0
    obs_gaps: bool = False
    debug: bool = False
    traffic: str = "log"
    traffic_idm_fraction: float = 1.0
    idm: trf.IDMConfig = trf.IDMConfig()

    def __post_init__(self):
        check_choice("traffic", self.traffic, trf.ACTOR_NAMES)
        check_range("traffic_idm_fraction", self.traffic_idm_fraction, 0.0, 1.0)
        check_choice("action_space", self.action_space, ("discrete", "continuous"))
        check_choice("obs", self.obs, ("none", "vector", "bev", "camera"))
        check_range("substeps", self.substeps, 1, 50)
        check_range("max_steps", self.max_steps, 0, 100_000)
        check_range("num_obs_agents", self.num_obs_agents, 1, 256)
        check_range("num_route_points", self.num_route_points, 2, 256)
        check_range("num_lane_points", self.num_lane_points, 1, 256)
        check_range("bev_size", self.bev_size, 8, 1024)
        check_range("bev_range", self.bev_range, 1.0, 1000.0)


@struct.dataclass
class RewardParams:
    """RAD rewards: -event_penalty when an event fires (lateral: static collision and
    deviations; longitudinal: dynamic collision) plus optional progress shaping,
    progress_weight per metre gained along the reference path (added to the
    longitudinal part). at_fault_only: penalise only dynamic collisions classed as the
    ego's fault (`jaxsim.events.CollisionClass`); every contact still ends the episode."""

    event_penalty: jnp.ndarray = 1.0
    progress_weight: jnp.ndarray = 0.0
    at_fault_only: jnp.ndarray = False


@struct.dataclass
class EnvParams:
    """Everything an env reads that is data rather than structure.

    `bank` is shared by all envs (never vmapped); every other field may carry a
    leading batch axis so each env has its own limits, thresholds and rewards.
    """

    SHARED_FIELDS = ("bank",)  # class attribute (not a field): never vmapped

    bank: Scenario
    dynamics: DynamicsParams = DynamicsParams()
    events: EventParams = EventParams()
    rewards: RewardParams = RewardParams()
    daa: DAAParams = DAAParams()  # Dynamic Adversary Agent; disabled (log replay) by default
    traffic: trf.TrafficParams = trf.TrafficParams()  # actors of the other agents; log replay by default


@struct.dataclass
class EnvState:
    """One env's state. Shapes: T log steps."""

    scenario_idx: jnp.ndarray  # () int32 into the bank
    t: jnp.ndarray  # () int32 log step of the current state
    ego: jnp.ndarray  # (4,) [x, y, yaw, speed]
    controls: jnp.ndarray  # (2,) last applied [accel, steer]
    accel: jnp.ndarray  # (2,) last [longitudinal, lateral] acceleration m/s^2
    route: jnp.ndarray  # (T, 4) reference path (expert log or a CTG cousin)
    route_len: jnp.ndarray  # () int32 valid points of `route`
    progress: jnp.ndarray  # () m along the route
    steps: jnp.ndarray  # () int32 env steps since reset
    metrics: met.EpisodeMetrics
    adv: AdvState  # DAA adversary (inert when params.daa.enabled is False)
    traffic: trf.TrafficState  # reactive agents (empty unless params.traffic.reactive)


class DrivingEnv(Env):
    """Closed-loop driving on a scenario bank (the innermost `jaxsim.base.Env`). See module docstring."""

    def __init__(self, config: EnvConfig = EnvConfig()):
        self._config = config
        self._discrete_spec = act.DiscreteActionSpec()

    @property
    def config(self) -> EnvConfig:
        return self._config

    @property
    def discrete_spec(self) -> act.DiscreteActionSpec:
        return self._discrete_spec

    # ---- parameters ----
    def default_params(self, bank: Scenario) -> EnvParams:
        """EnvParams for `bank`; traffic actors from the config (`env.traffic`, `env.idm`)."""
        c = self.config
        return EnvParams(bank=bank, traffic=trf.params_from_config(c.traffic, c.idm, c.traffic_idm_fraction))

    # ---- spaces ----
    @property
    def action_shape(self) -> tuple[int, ...]:
        return (2,)

    def action_mask(self, params: EnvParams):
        """(num_lat, num_lon) bool reachable-anchor mask for the discrete space."""
        d = params.dynamics
        return act.reachable_mask(
            self.discrete_spec,
            float(d.wheelbase),
            float(d.max_steer),
            float(d.max_speed),
            float(d.max_accel),
            float(d.max_decel),
        )

    # ---- traffic ----
    def current_agents(self, state: EnvState, params: EnvParams):
        """Surrounding agents at the state's step: (states (A, 4), valid (A,), sizes (A, 2)).

        Each agent as its traffic actor has it (`jaxsim.traffic`), the DAA adversary on top.
        """
        bank, i = params.bank, state.scenario_idx
        if params.traffic.reactive:  # static: log replay traces none of this
            agents, valid, sizes = state.traffic.pose, state.traffic.valid, bank.agent_size[i]
        else:
            agents, valid, sizes = trf.log_agents(bank, i, state.t)
        if params.daa.enabled:  # static: the DAA-off path costs nothing
            agents, valid, sizes = trf.overlay_adversary(agents, valid, sizes, state.adv)
        return agents, valid, sizes

    # ---- reset ----
    def reset_state(self, key: jax.Array, params: EnvParams) -> EnvState:
        """Start an episode on a uniformly sampled scenario (`reset` without the observation)."""
        key_idx, key_init = jax.random.split(key)
        idx = jax.random.randint(key_idx, (), 0, params.bank.ego_traj.shape[0])
        return self.init_state(key_init, params, idx, params.bank.ego_traj[idx], jnp.sum(params.bank.ego_valid[idx]))

    def reset_to(self, key: jax.Array, params: EnvParams, scenario_idx):
        """Start an episode on scenario `scenario_idx` following its expert log -> (obs, state)."""
        state = self.reset_to_state(key, params, scenario_idx)
        return self.observe(state, params), state

    def reset_to_state(self, key: jax.Array, params: EnvParams, scenario_idx) -> EnvState:
        """`reset_to` without the observation."""
        bank = params.bank
        _check_scenario_idx(scenario_idx, bank)  # eager only; traced ids are clamped (module docstring)
        idx = jnp.asarray(scenario_idx, jnp.int32)
        route = bank.ego_traj[idx]
        route_len = jnp.sum(bank.ego_valid[idx]).astype(jnp.int32)
        return self.init_state(key, params, idx, route, route_len)

    def init_state(self, key, params: EnvParams, scenario_idx, route, route_len) -> EnvState:
        """The state at the start of an episode on `route` (T, 4) with `route_len` valid points."""
        z2 = jnp.zeros((2,), jnp.float32)
        if params.daa.enabled:
            from jaxsim.daa.check import plan

            adv = plan(key, params.daa, params.bank, jnp.asarray(scenario_idx, jnp.int32), route,
                       jnp.asarray(route_len, jnp.int32), params.dynamics)  # fmt: skip
        else:
            adv = AdvState.off()
        return EnvState(
            scenario_idx=jnp.asarray(scenario_idx, jnp.int32),
            t=jnp.zeros((), jnp.int32),
            ego=route[0],
            controls=z2,
            accel=z2,
            route=route,
            route_len=jnp.asarray(route_len, jnp.int32),
            progress=jnp.zeros((), jnp.float32),
            steps=jnp.zeros((), jnp.int32),
            metrics=met.EpisodeMetrics.zeros(),
            adv=adv,
            traffic=trf.init(params.traffic, params.bank, jnp.asarray(scenario_idx, jnp.int32)),
        )

    # ---- step ----
    def controls_from_action(self, action, state: EnvState, params: EnvParams) -> jnp.ndarray:
        """Bicycle controls [accel, steer] for `action` from `state` (clipped to the limits)."""
        if self.config.action_space == "discrete":
            target = act.decode_discrete(jnp.asarray(action, jnp.int32), self.discrete_spec)
            return act.displacement_to_controls(target, state.ego[3], self.discrete_spec.horizon, params.dynamics)
        return act.continuous_to_controls(jnp.asarray(action, jnp.float32), params.dynamics)

    def _substep(self, state: EnvState, action, params: EnvParams):
        """Advance one log step; returns (state, events, jerk (2,), jerk_valid)."""
        bank, i = params.bank, state.scenario_idx
        dt = bank.dt[i]
        controls = self.controls_from_action(action, state, params)
        ego = bicycle_step(state.ego, controls, dt, params.dynamics)
        t = state.t + 1
        adv, traffic = state.adv, state.traffic
        if params.traffic.reactive:  # IDM actors react to everything at t, the ego and adversary included
            now, now_valid, now_sizes = self.current_agents(state, params)
            traffic = trf.step_idm(traffic, params.traffic, bank, i, state.t, state.ego, bank.ego_size[i],
                                   now, now_valid, now_sizes, dt)  # fmt: skip
        if params.daa.enabled:  # closed loop: the adversary reacts to the simulated ego at t
            adv = adversary_step(adv, state.ego, bank.ego_size[i], state.t, bank, i, params.dynamics, dt)
        moved = state.replace(t=t, ego=ego, adv=adv, traffic=traffic)
        agents, valid, sizes = self.current_agents(moved, params)
        ego_box = jnp.concatenate([ego[:3], bank.ego_size[i]])
        agent_boxes = jnp.concatenate([agents[:, :3], sizes], axis=-1)
        offroad = ev_lib.offroad_distance(bank.sdf, i, bank.sdf_origin[i], bank.sdf_res[i], ego_box)
        events = ev_lib.detect(
            ego_box, agent_boxes, valid, bank.static_boxes[i], bank.static_valid[i],
            offroad, state.route, state.route_len, params.events, ego[3], agents[:, 3],
        )  # fmt: skip
        yaw_rate = jnp.arctan2(jnp.sin(ego[2] - state.ego[2]), jnp.cos(ego[2] - state.ego[2])) / dt
        accel = jnp.stack([(ego[3] - state.ego[3]) / dt, ego[3] * yaw_rate])
        jerk = (accel - state.accel) / dt
        jerk_valid = state.steps >= 1
        new = moved.replace(controls=controls, accel=accel, progress=events.route_progress)
        return new, events, jerk, jerk_valid

    def step(self, key: jax.Array, state: EnvState, action, params: EnvParams):
        """One env step -> (obs, state, reward, terminated, truncated, info).

        info: reward_lat, reward_lon (RAD's two groups), the step's `Events`, and
        `metrics`, the episode's running metrics (final once the episode is done).
        action: shape (2,) (checked at trace time); NaN/inf -> the safe action.
        """
        state, reward, terminated, truncated, info = self.transition(key, state, action, params)
        return self.observe(state, params), state, reward, terminated, truncated, info

    def transition(self, key: jax.Array, state: EnvState, action, params: EnvParams):
        """`step` without the observation: (state, reward, terminated, truncated, info).

        Wrappers that pick between this state and a reset state observe only once.
        """
        del key
        cfg = self.config
        act.check_action_shape(action, cfg.action_space)  # trace time: a wrong shape never compiles
        raw_action, action = action, act.safe_action(action, cfg.action_space, self.discrete_spec, params.dynamics)
        new, events, jerk, jerk_valid = self._substep(state, action, params)
        progress0 = state.progress
        if cfg.substeps > 1:

            def body(carry, _):
                s, e, j, jv = carry
                s2, e2, j2, jv2 = self._substep(s, action, params)
                keep = e.any  # freeze after the first event
                pick = lambda a, b: jax.tree.map(lambda x, y: jnp.where(keep, x, y), a, b)  # noqa: E731
                return (pick(s, s2), pick(e, e2), pick(j, j2), pick(jv, jv2)), None

            (new, events, jerk, jerk_valid), _ = jax.lax.scan(
                body, (new, events, jerk, jerk_valid), None, length=cfg.substeps - 1
            )
        terminated = events.any
        route_length = self.route_length(new)
        completion = jnp.clip(new.progress / jnp.maximum(route_length, 1e-3), 0.0, 1.0)
        metrics = met.update(new.metrics, events, jerk[0], jerk[1], jerk_valid, completion)
        new = new.replace(steps=state.steps + 1, metrics=metrics)
        last_t = new.route_len - 1
        if cfg.max_steps:
            last_t = jnp.minimum(last_t, cfg.max_steps * cfg.substeps)
        truncated = (new.t + cfg.substeps > last_t) & ~terminated
        rp = params.rewards
        penalised = events.dynamic_collision & (events.at_fault | ~jnp.asarray(rp.at_fault_only, bool))
        reward_lon = -rp.event_penalty * penalised + rp.progress_weight * (new.progress - progress0)
        reward_lat = -rp.event_penalty * (
            events.static_collision | events.position_deviation | events.heading_deviation
        )
        reward = reward_lon + reward_lat
        if cfg.debug:
            _check_finite(new, raw_action)
        info = {"reward_lat": reward_lat, "reward_lon": reward_lon, "events": events, "metrics": metrics}
        return new, reward, terminated, truncated, info

    @staticmethod
    def route_length(state: EnvState) -> jnp.ndarray:
        seg = jnp.sqrt(jnp.sum(jnp.diff(state.route[:, :2], axis=0) ** 2, axis=-1) + 1e-12)
        return jnp.sum(jnp.where(jnp.arange(seg.shape[0]) < state.route_len - 1, seg, 0.0))

    # ---- observation ----
    def observe(self, state: EnvState, params: EnvParams) -> jnp.ndarray:
        from jaxsim import observations

        agents, valid, sizes = self.current_agents(state, params)
        return observations.observe(self.config, state, params, agents, valid, sizes)

    def observation_shape(self, params: EnvParams) -> tuple[int, ...]:
        obs, _ = jax.eval_shape(lambda: self.reset_to(jax.random.PRNGKey(0), params, 0))
        return obs.shape


def _check_finite(state: EnvState, action) -> None:
    """Debug mode: raise on the host when the ego state or action is not finite."""

    def report(ego, act_, t):
        import numpy as np

        if not (np.all(np.isfinite(ego)) and np.all(np.isfinite(act_))):
            raise FloatingPointError(f"non-finite value at log step {int(t)}: ego={ego}, action={act_}")

    jax.debug.callback(report, state.ego, jnp.asarray(action, jnp.float32), state.t)


class ScenarioIndexError(ValueError):
    """`reset_to` got a scenario id outside the bank."""


def _check_scenario_idx(scenario_idx, bank: Scenario) -> None:
    """Raise ScenarioIndexError for a concrete id outside [0, N); tracers pass (see module docstring)."""
    if isinstance(scenario_idx, jax.core.Tracer):
        return
    import numpy as np

    n = bank.ego_traj.shape[0]
    idx = np.asarray(scenario_idx)
    if idx.shape != () or not (np.issubdtype(idx.dtype, np.integer) or idx.dtype == bool):
        if idx.shape == () and np.issubdtype(idx.dtype, np.floating) and float(idx).is_integer():
            idx = idx.astype(np.int64)
        else:
            raise ScenarioIndexError(f"scenario_idx must be one integer, got {scenario_idx!r}; allowed: 0..{n - 1}")
    if not 0 <= int(idx) < n:
        raise ScenarioIndexError(
            f"scenario_idx {int(idx)} is out of range; allowed: 0..{n - 1} (the bank holds {n} scenarios)"
        )
