"""DAA parameters: which corner case each env plays and how hard, as a per-env pytree.

`DAAParams` lives in `EnvParams.daa`. Its behaviour id and continuous knobs are data,
so one vmapped batch mixes cut-ins, hard brakes, lane changes and merges. `DAAConfig`
is the static, validated description of the ranges the knobs are sampled from
(`sample_params`); the same ranges travel in the params (`lo`, `hi`) so that `reset`
can resample a candidate the trajectory check rejects.

Knob meanings (SI units):
  trigger_gap:  m. The manoeuvre starts once the bumper-to-bumper gap along the ego's
                heading is within this (|gap| for cut-in/merge, gap for vehicles ahead).
  trigger_ttc:  s. ...or once the time-to-collision with the ego falls below this
                (vehicles ahead only; cut-in/merge ignore it).
  lat_duration: s. Duration of the lateral move into the ego's lane (quintic profile).
  final_gap:    m. Bumper gap ahead of the ego the cut-in/merge vehicle aims to enter at.
  decel:        m/s^2 (> 0). Hard-brake deceleration.
  speed_offset: m/s. Speed relative to the ego's speed at trigger after the move
                (negative: the adversary ends slower than the ego).
"""

from __future__ import annotations

import dataclasses
import enum

import jax
import jax.numpy as jnp
from flax import struct

from jaxsim.config_utils import ConfigError, check_choice, check_range


class Behaviour(enum.IntEnum):
    KEEP_LOG = 0  # no-op: every agent replays its log
    CUT_IN_LEFT = 1  # from the left neighbour lane, into the gap ahead of the ego
    CUT_IN_RIGHT = 2
    HARD_BRAKE = 3  # the lead vehicle in the ego's lane brakes hard
    LANE_CHANGE = 4  # a vehicle ahead in a neighbour lane swerves in at a short gap
    MERGE = 5  # a vehicle on a ramp / on the right merges in front of the ego


BEHAVIOUR_NAMES = tuple(b.name.lower() for b in Behaviour)


class Fallback(enum.IntEnum):
    """What to do when no vehicle qualifies as the adversary (always recorded in the state)."""

    PLAIN = 0  # play the episode as plain log replay
    SPAWN = 1  # spawn an adversary in an unused agent slot at a behaviour-specific spot


KNOB_NAMES = ("trigger_gap", "trigger_ttc", "lat_duration", "final_gap", "decel", "speed_offset")


@struct.dataclass
class Knobs:
    """The continuous DAA parameters of one env (each () float32; see module docstring)."""

    trigger_gap: jnp.ndarray = 15.0
    trigger_ttc: jnp.ndarray = 3.0
    lat_duration: jnp.ndarray = 2.5
    final_gap: jnp.ndarray = 5.0
    decel: jnp.ndarray = 5.0
    speed_offset: jnp.ndarray = -2.0

    def as_array(self) -> jnp.ndarray:
        return jnp.stack([jnp.asarray(getattr(self, k), jnp.float32) for k in KNOB_NAMES], axis=-1)

    @classmethod
    def from_array(cls, a: jnp.ndarray) -> "Knobs":
        return cls(**{k: a[..., j] for j, k in enumerate(KNOB_NAMES)})


@struct.dataclass
class DAAParams:
    """Per-env DAA settings carried in `EnvParams.daa`.

    behaviour: () int32 `Behaviour`. knobs: the values used first. lo, hi: the ranges
    `reset` draws replacement candidates from when the check rejects one.
    fallback: () int32 `Fallback` for envs where no vehicle qualifies.
    enabled (static): False skips all DAA code at trace time (zero cost; the default).
    budget (static): candidates tried per episode (1 = no resampling).
    keep_unavoidable (static): keep plans no driver could avoid (`check.UNAVOIDABLE`).
    """

    behaviour: jnp.ndarray = 0
    knobs: Knobs = Knobs()
    lo: Knobs = Knobs()
    hi: Knobs = Knobs()
    fallback: jnp.ndarray = 0
    enabled: bool = struct.field(pytree_node=False, default=False)
    budget: int = struct.field(pytree_node=False, default=3)
    keep_unavoidable: bool = struct.field(pytree_node=False, default=False)


@dataclasses.dataclass(frozen=True)
class KnobRanges:
    """[low, high] per knob for one behaviour family."""

    trigger_gap: tuple = (10.0, 25.0)
    trigger_ttc: tuple = (2.0, 4.0)
    lat_duration: tuple = (1.5, 3.0)
    final_gap: tuple = (1.0, 8.0)
    decel: tuple = (3.0, 7.0)
    speed_offset: tuple = (-4.0, 0.0)

    def __post_init__(self):
        bounds = {"trigger_gap": (-50, 200), "trigger_ttc": (0, 30), "lat_duration": (0.5, 10),
                  "final_gap": (-5, 100), "decel": (0.1, 12), "speed_offset": (-30, 30)}  # fmt: skip
        for name, (lo_b, hi_b) in bounds.items():
            pair = getattr(self, name)
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise ConfigError(f"'{name}' must be a [low, high] pair, got {pair!r}")
            for v in pair:
                check_range(name, v, lo_b, hi_b)
            if pair[0] > pair[1]:
                raise ConfigError(f"'{name}' range {pair!r} has low > high")


@dataclasses.dataclass(frozen=True)
class DAAConfig:
    """Static sampling description: behaviour mix, knob ranges per family, fallback, budget.

    weights: relative frequency of each `Behaviour` in BEHAVIOUR_NAMES order
      (keep_log, cut_in_left, cut_in_right, hard_brake, lane_change, merge).
    """

    weights: tuple = (0.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    cut_in: KnobRanges = KnobRanges()
    hard_brake: KnobRanges = KnobRanges(trigger_gap=(8.0, 25.0), decel=(4.0, 8.0), speed_offset=(0.0, 0.0))
    lane_change: KnobRanges = KnobRanges(trigger_gap=(2.0, 10.0), lat_duration=(1.2, 2.5), speed_offset=(-5.0, -1.0))
    merge: KnobRanges = KnobRanges(lat_duration=(2.5, 4.0), final_gap=(2.0, 10.0), speed_offset=(-3.0, 0.0))
    fallback: str = "spawn"
    budget: int = 3
    keep_unavoidable: bool = False  # stress tests: keep plans even full braking cannot avoid

    def __post_init__(self):
        if len(self.weights) != len(Behaviour):
            raise ConfigError(f"'weights' needs {len(Behaviour)} entries in the order {BEHAVIOUR_NAMES}")
        for w in self.weights:
            check_range("weights", w, 0.0, None)
        if sum(self.weights) <= 0:
            raise ConfigError("'weights' must have a positive entry")
        check_choice("fallback", self.fallback, ("plain", "spawn"))
        check_range("budget", self.budget, 1, 64)

    def family(self, behaviour: int) -> KnobRanges:
        b = Behaviour(behaviour)
        if b in (Behaviour.CUT_IN_LEFT, Behaviour.CUT_IN_RIGHT, Behaviour.KEEP_LOG):
            return self.cut_in
        return {Behaviour.HARD_BRAKE: self.hard_brake, Behaviour.LANE_CHANGE: self.lane_change,
                Behaviour.MERGE: self.merge}[b]  # fmt: skip

    def range_table(self) -> tuple[jnp.ndarray, jnp.ndarray]:
        """(lo, hi) arrays (num_behaviours, num_knobs) float32."""
        fams = [self.family(b) for b in Behaviour]
        lo = jnp.array([[getattr(f, k)[0] for k in KNOB_NAMES] for f in fams], jnp.float32)
        hi = jnp.array([[getattr(f, k)[1] for k in KNOB_NAMES] for f in fams], jnp.float32)
        return lo, hi


def params_for(behaviour, knobs: Knobs, config: DAAConfig = DAAConfig()) -> DAAParams:
    """Enabled DAAParams for one env with given behaviour and knobs; lo/hi from `config`."""
    lo, hi = config.range_table()
    b = jnp.asarray(behaviour, jnp.int32)
    return DAAParams(
        behaviour=b,
        knobs=jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), knobs),
        lo=Knobs.from_array(lo[b]),
        hi=Knobs.from_array(hi[b]),
        fallback=jnp.asarray(Fallback[config.fallback.upper()], jnp.int32),
        enabled=True,
        budget=config.budget,
        keep_unavoidable=config.keep_unavoidable,
    )


def sample_knobs(key, behaviour, lo: Knobs, hi: Knobs) -> Knobs:
    """Uniform knobs in [lo, hi] (shapes broadcast with `behaviour`)."""
    lo_a, hi_a = lo.as_array(), hi.as_array()
    u = jax.random.uniform(key, jnp.shape(lo_a))
    return Knobs.from_array(lo_a + u * (hi_a - lo_a))


def sample_params(key, num_envs: int, config: DAAConfig = DAAConfig()) -> DAAParams:
    """DAAParams with a leading (num_envs,) axis: behaviours drawn by `config.weights`,
    knobs uniform within the behaviour's ranges. Put it in batched EnvParams."""
    kb, kk = jax.random.split(key)
    logits = jnp.log(jnp.asarray(config.weights, jnp.float32))
    beh = jax.random.categorical(kb, logits, shape=(num_envs,)).astype(jnp.int32)
    lo, hi = config.range_table()
    lo_k, hi_k = Knobs.from_array(lo[beh]), Knobs.from_array(hi[beh])
    return DAAParams(
        behaviour=beh,
        knobs=sample_knobs(kk, beh, lo_k, hi_k),
        lo=lo_k,
        hi=hi_k,
        fallback=jnp.full((num_envs,), Fallback[config.fallback.upper()], jnp.int32),
        enabled=True,
        budget=config.budget,
        keep_unavoidable=config.keep_unavoidable,
    )
