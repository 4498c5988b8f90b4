"""The env contract (brax `Env`/`Wrapper`, gymnax `step`/`step_env`): what every env and
wrapper in `jaxsim` provides, and a wrapper base that forwards each piece explicitly.

Primitives (a wrapper overrides these to change behaviour):
  reset_state(key, params) -> state                     a new episode on a sampled scenario
  reset_to_state(key, params, scenario_idx) -> state    a new episode on `scenario_idx`
  init_state(key, params, scenario_idx, route, route_len) -> state   ... on a given route
  transition(key, state, action, params) -> (state, reward, terminated, truncated, info)
  observe(state, params) -> obs
Derived, written once here and never overridden by a wrapper, so they always agree with
the primitives (a wrapper that changes how episodes start changes `reset`, `reset_to`
and the resets an auto-reset wrapper performs, all at once):
  reset = observe(reset_state), reset_to = observe(reset_to_state),
  reset_on_route = observe(init_state), step = observe(transition).
Queries, forwarded unchanged unless a wrapper changes the state's type or batch:
  default_params(bank), observation_shape(params) (one env's), action_shape,
  action_mask(params), current_agents(state, params), config, discrete_spec, unwrapped.

`Wrapper.__getattr__` forwards only attributes outside the contract (e.g. a wrapper's
own settings such as `num_envs` or `batched_params` from further down the stack); a
contract name never reaches it because every one is defined on `Env`.
"""

from __future__ import annotations

import abc

PRIMITIVES = ("reset_state", "reset_to_state", "init_state", "transition", "observe")
DERIVED = ("reset", "reset_to", "reset_on_route", "step")
QUERIES = ("default_params", "observation_shape", "action_shape", "action_mask", "current_agents", "config",
           "discrete_spec", "unwrapped")  # fmt: skip
CONTRACT = PRIMITIVES + DERIVED + QUERIES


class Env(abc.ABC):
    """Abstract env: one episode per call (batch with `jaxsim.wrappers.VmapWrapper`)."""

    # ---- primitives ----
    @abc.abstractmethod
    def reset_state(self, key, params):
        """State at the start of an episode on a sampled scenario."""

    @abc.abstractmethod
    def reset_to_state(self, key, params, scenario_idx):
        """State at the start of an episode on scenario `scenario_idx`."""

    @abc.abstractmethod
    def init_state(self, key, params, scenario_idx, route, route_len):
        """State at the start of an episode on `scenario_idx` following `route` (T, 4)."""

    @abc.abstractmethod
    def transition(self, key, state, action, params):
        """`step` without the observation: (state, reward, terminated, truncated, info)."""

    @abc.abstractmethod
    def observe(self, state, params):
        """The observation of `state`."""

    # ---- derived (do not override in wrappers) ----
    def reset(self, key, params):
        """(obs, state) of a new episode on a sampled scenario."""
        state = self.reset_state(key, params)
        return self.observe(state, params), state

    def reset_to(self, key, params, scenario_idx):
        """(obs, state) of a new episode on scenario `scenario_idx`."""
        state = self.reset_to_state(key, params, scenario_idx)
        return self.observe(state, params), state

    def reset_on_route(self, key, params, scenario_idx, route, route_len):
        """(obs, state) of a new episode on `scenario_idx` following `route`."""
        state = self.init_state(key, params, scenario_idx, route, route_len)
        return self.observe(state, params), state

    def step(self, key, state, action, params):
        """(obs, state, reward, terminated, truncated, info)."""
        state, reward, terminated, truncated, info = self.transition(key, state, action, params)
        return self.observe(state, params), state, reward, terminated, truncated, info

    # ---- queries ----
    @abc.abstractmethod
    def default_params(self, bank):
        """EnvParams for `bank` with every other field at its default."""

    @abc.abstractmethod
    def observation_shape(self, params) -> tuple[int, ...]:
        """Shape of one env's observation."""

    @property
    @abc.abstractmethod
    def action_shape(self) -> tuple[int, ...]:
        """Shape of one env's action."""

    @abc.abstractmethod
    def action_mask(self, params):
        """Reachable-anchor mask of the discrete action space."""

    @abc.abstractmethod
    def current_agents(self, state, params):
        """Surrounding agents at `state`: (states (A, 4), valid (A,), sizes (A, 2))."""

    @property
    @abc.abstractmethod
    def config(self):
        """The static `EnvConfig`."""

    @property
    @abc.abstractmethod
    def discrete_spec(self):
        """The discrete action space's anchors (`jaxsim.actions.DiscreteActionSpec`)."""

    @property
    def unwrapped(self) -> Env:
        """The innermost env (a `DrivingEnv`)."""
        return self


class Wrapper(Env):
    """Forwards every primitive and query to `self.env`; derived methods come from `Env`."""

    def __init__(self, env: Env):
        if not isinstance(env, Env):
            raise TypeError(f"a Wrapper wraps a jaxsim.base.Env, got {type(env).__name__}")
        self.env = env

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        bad = [name for name in DERIVED if name in vars(cls)]
        if bad:
            raise TypeError(f"{cls.__name__} overrides {bad}; override the primitives {PRIMITIVES} instead")

    def __getattr__(self, name):
        # Only reached for names the class does not define, i.e. never for the contract.
        if name == "env":  # not set yet (during __init__): no recursion
            raise AttributeError(name)
        return getattr(self.env, name)

    # ---- primitives ----
    def reset_state(self, key, params):
        return self.env.reset_state(key, params)

    def reset_to_state(self, key, params, scenario_idx):
        return self.env.reset_to_state(key, params, scenario_idx)

    def init_state(self, key, params, scenario_idx, route, route_len):
        return self.env.init_state(key, params, scenario_idx, route, route_len)

    def transition(self, key, state, action, params):
        return self.env.transition(key, state, action, params)

    def observe(self, state, params):
        return self.env.observe(state, params)

    # ---- queries ----
    def default_params(self, bank):
        return self.env.default_params(bank)

    def observation_shape(self, params) -> tuple[int, ...]:
        return self.env.observation_shape(params)

    @property
    def action_shape(self) -> tuple[int, ...]:
        return self.env.action_shape

    def action_mask(self, params):
        return self.env.action_mask(params)

    def current_agents(self, state, params):
        return self.env.current_agents(state, params)

    @property
    def config(self):
        return self.env.config

    @property
    def discrete_spec(self):
        return self.env.discrete_spec

    @property
    def unwrapped(self) -> Env:
        return self.env.unwrapped
