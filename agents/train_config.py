"""Training configuration: nested frozen dataclasses loaded from YAML with `--set` overrides.

    cfg = load_config("configs/default.yaml", ["ppo.lr=1e-4", "seeds=3"])

Every section validates itself in `__post_init__`, so a bad value fails on load with an
error naming the key (`'ppo.clip_lat' is -1; allowed range: [0.0, 1.0]`). Unknown keys
are rejected by name (`jaxsim.config_utils.dataclass_from_dict`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from jaxsim.config_utils import ConfigError, apply_overrides, check_choice, check_range, dataclass_from_dict
from jaxsim.env import EnvConfig

# jaxsim.daa.params.BEHAVIOUR_NAMES without keep_log (checked against it when DAA is importable)
DAA_BEHAVIOURS = ("cut_in_left", "cut_in_right", "hard_brake", "lane_change", "merge")


@dataclass(frozen=True)
class ScenarioConfig:
    """Where scenarios come from. source: "procedural" (jaxsim.procedural) or "file" (.npz banks).
    num_validation / validation_path: a validation bank, disjoint from the train bank,
    on which the trained policies are also evaluated (`validation_eval` in results), so
    that settings can be chosen without looking at the held-out split; 0 / "" = none."""

    source: str = "procedural"
    num_train: int = 64
    num_heldout: int = 64
    num_validation: int = 0
    seed: int = 0
    train_path: str = ""
    heldout_path: str = ""
    validation_path: str = ""

    def __post_init__(self):
        check_choice("scenarios.source", self.source, ("procedural", "file"))
        check_range("scenarios.num_train", self.num_train, 1, 10_000_000)
        check_range("scenarios.num_heldout", self.num_heldout, 1, 10_000_000)
        check_range("scenarios.num_validation", self.num_validation, 0, 10_000_000)


@dataclass(frozen=True)
class DAASettings:
    """Dynamic adversary agents (jaxsim.daa): used in PPO rollouts, IL data and evaluation.
    keep_unavoidable: keep adversary plans that even full braking from the logged ego
    state cannot avoid (stress tests); False rejects them (reason `unavoidable`)."""

    enabled: bool = True
    behaviours: tuple = DAA_BEHAVIOURS
    keep_unavoidable: bool = False

    def __post_init__(self):
        for b in self.behaviours:
            check_choice("daa.behaviours[]", b, DAA_BEHAVIOURS)


@dataclass(frozen=True)
class CTGSettings:
    """Cousin trajectories (jaxsim.ctg): extra IL pairs and, with `ppo_starts`, PPO
    episodes that start on a precomputed cousin route (`jaxsim.ctg.reset`; the expert log
    with probability `ppo_expert_share`)."""

    enabled: bool = True
    num_cousins: int = 4
    ppo_starts: bool = False
    ppo_expert_share: float = 0.25

    def __post_init__(self):
        check_range("ctg.num_cousins", self.num_cousins, 1, 64)
        check_range("ctg.ppo_expert_share", self.ppo_expert_share, 0.0, 1.0)


@dataclass(frozen=True)
class NetworkConfig:
    """encoder: "mlp" (flat vector), "attention" (agent/lane tokens), "cnn" (BEV raster) or
    "impala" (camera images, `channels` per residual stage).
    head: "discrete" (RAD's decoupled anchor heads) or "continuous" (Gaussian [accel, steer]).
    perception_coef: weight of the camera networks' auxiliary loss predicting the
    privileged vector observation from the image (IL and PPO; 0 = no perception head).
    anchor_mask: push the discrete heads' logits of anchors the bicycle model cannot
    reach from the observed speed far down (`jaxsim.actions.speed_anchor_masks`; needs
    a vector observation).
    compute_dtype: the camera encoder's compute type, float32 or bfloat16 (parameters,
    heads and losses stay float32)."""

    encoder: str = "mlp"
    head: str = "discrete"
    hidden: int = 256
    embed: int = 64
    num_heads: int = 4
    init_log_std: float = -0.5
    channels: tuple = (16, 32, 32)
    perception_coef: float = 0.0
    anchor_mask: bool = False
    compute_dtype: str = "float32"

    def __post_init__(self):
        check_choice("network.encoder", self.encoder, ("mlp", "attention", "cnn", "impala"))
        check_choice("network.compute_dtype", self.compute_dtype, ("float32", "bfloat16"))
        if not (1 <= len(self.channels) <= 6):
            raise ConfigError(f"'network.channels' needs 1 to 6 stages, got {list(self.channels)}")
        for c in self.channels:
            check_range("network.channels[]", c, 1, 1024)
        check_range("network.perception_coef", self.perception_coef, 0.0, 1e6)
        check_choice("network.head", self.head, ("discrete", "continuous"))
        check_range("network.hidden", self.hidden, 8, 8192)
        check_range("network.embed", self.embed, 4, 4096)
        check_range("network.num_heads", self.num_heads, 1, 64)
        if self.embed % self.num_heads:
            raise ConfigError(
                f"'network.embed' ({self.embed}) must be divisible by 'network.num_heads' ({self.num_heads})"
            )


@dataclass(frozen=True)
class ILConfig:
    """Behaviour cloning on expert (+ CTG cousin, + DAA scene) pairs. loss: "ce" or "focal"."""

    enabled: bool = True
    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    loss: str = "ce"
    focal_gamma: float = 2.0
    label_smoothing: float = 0.0
    label_sigma: float = 0.0  # Gaussian soft labels over neighbouring anchors (in anchors; 0 = one-hot)
    steps_per_chunk: int = 500  # checkpoint and log every this many steps
    dagger_rounds: int = 0  # DAgger: rounds of learner rollouts labelled by the expert (0 = plain BC)
    dagger_repeats: int = 2  # episodes per training scenario in each DAgger round
    dagger_steps: int = 0  # optimiser steps after each round (0 = il.steps / (rounds + 1))
    dagger_mix: float = 0.5  # share of each batch drawn from DAgger pairs once there are some (0 = by count)
    stride: int = 1  # expert / cousin pairs at every stride-th logged step (camera pairs are rendered once)
    teacher: str = ""  # camera IL: a vector-observation policy dir whose actions label DAgger states

    def __post_init__(self):
        check_range("il.steps", self.steps, 0, 10_000_000)
        check_range("il.batch_size", self.batch_size, 1, 1_000_000)
        check_range("il.lr", self.lr, 0.0, 1.0)
        check_range("il.weight_decay", self.weight_decay, 0.0, 1.0)
        check_choice("il.loss", self.loss, ("ce", "focal"))
        check_range("il.focal_gamma", self.focal_gamma, 0.0, 10.0)
        check_range("il.label_smoothing", self.label_smoothing, 0.0, 0.5)
        check_range("il.steps_per_chunk", self.steps_per_chunk, 1, 10_000_000)
        check_range("il.label_sigma", self.label_sigma, 0.0, 30.0)
        check_range("il.dagger_rounds", self.dagger_rounds, 0, 100)
        check_range("il.dagger_repeats", self.dagger_repeats, 1, 1000)
        check_range("il.dagger_steps", self.dagger_steps, 0, 10_000_000)
        check_range("il.dagger_mix", self.dagger_mix, 0.0, 1.0)
        check_range("il.stride", self.stride, 1, 100)


@dataclass(frozen=True)
class PPOConfig:
    """RAD-style PPO. decoupled: per-group advantages and clip ranges (lateral: static
    collision + deviations, clip_lat; longitudinal: dynamic collision, clip_lon);
    False sums the two rewards into one advantage clipped by clip_lon."""

    enabled: bool = True
    num_envs: int = 64
    num_steps: int = 16
    num_updates: int = 200
    updates_per_chunk: int = 50
    epochs: int = 4
    num_minibatches: int = 4
    lr: float = 3e-4
    anneal_lr: bool = True
    gamma: float = 0.9
    gae_lambda: float = 0.95
    decoupled: bool = True
    clip_lat: float = 0.1
    clip_lon: float = 0.2
    vf_coef: float = 0.5
    ent_coef: float = 0.003
    max_grad_norm: float = 0.5
    aux_coef: float = 0.0  # RAD's auxiliary directional losses (0 = off)
    il_coef: float = 0.0  # IL regulariser on expert pairs (0 = off); RL:IL mixing
    il_heads: str = "both"  # which action groups the IL regulariser imitates: both or lat
    ttc_weight: float = 0.0  # longitudinal shaping: -w * max(0, 1 - TTC/ttc_horizon) per decision
    ttc_horizon: float = 3.0  # s
    bootstrap_truncated: bool = True  # bootstrap V(final obs) at truncation
    progress_weight: float = 0.0  # reward shaping per metre of route progress
    reward_collisions: str = "all"  # dynamic collisions penalised: all contacts, or at_fault (nuPlan classes)
    il_interleave: int = 0  # RAD's RL:IL interleaving: after every N PPO updates one IL update (0 = off)

    def __post_init__(self):
        for name in ("num_envs", "num_steps", "num_updates", "updates_per_chunk", "epochs", "num_minibatches"):
            check_range(f"ppo.{name}", getattr(self, name), 0 if name == "num_updates" else 1, 10_000_000)
        check_range("ppo.lr", self.lr, 0.0, 1.0)
        check_range("ppo.gamma", self.gamma, 0.0, 1.0)
        check_range("ppo.gae_lambda", self.gae_lambda, 0.0, 1.0)
        for name in ("clip_lat", "clip_lon"):
            check_range(f"ppo.{name}", getattr(self, name), 0.0, 1.0)
        check_choice("ppo.il_heads", self.il_heads, ("both", "lat"))
        check_choice("ppo.reward_collisions", self.reward_collisions, ("all", "at_fault"))
        check_range("ppo.il_interleave", self.il_interleave, 0, 1000)
        check_range("ppo.ttc_horizon", self.ttc_horizon, 0.1, 60.0)
        for name in ("vf_coef", "ent_coef", "max_grad_norm", "aux_coef", "il_coef", "progress_weight", "ttc_weight"):
            check_range(f"ppo.{name}", getattr(self, name), 0.0, 1e6)
        if (self.num_envs * self.num_steps) % self.num_minibatches:
            raise ConfigError(
                f"'ppo.num_minibatches' ({self.num_minibatches}) must divide ppo.num_envs * ppo.num_steps "
                f"({self.num_envs * self.num_steps})"
            )


@dataclass(frozen=True)
class EvalConfig:
    """Closed-loop evaluation on the held-out split: DAA off plus each DAA behaviour."""

    enabled: bool = True
    with_daa: bool = True
    videos: int = 2
    seed: int = 0

    def __post_init__(self):
        check_range("eval.videos", self.videos, 0, 100)


@dataclass(frozen=True)
class RenderConfig:
    """Camera observations (`env.obs: camera`), rendered by render_bridge (torch 3DGS).

    backend: "gsplat" (CUDA) or "reference" (the pure-torch splatter, any device; slow,
    for CPU smoke runs); "auto" picks gsplat when CUDA is there, else the reference.
    rig: "front" or "nuscenes6"; width/height in pixels per camera. gaussians: target
    background Gaussians per scene of the procedural world (0 = its default spacing);
    actor_gaussians per actor template. ego_state: stack the ego-state block (speed,
    controls, route offset, heading error, accelerations, route points ahead) beside the
    image; never agents', lanes' or the road's privileged geometry. max_batch: envs per
    renderer call. frames: consecutive env steps the policy sees (frame stacking along the
    camera axis, oldest first; 2 shows closing speeds a single frame cannot)."""

    backend: str = "gsplat"
    rig: str = "front"
    width: int = 64
    height: int = 64
    gaussians: int = 0
    actor_gaussians: int = 384
    buildings: bool = True
    ego_state: bool = True
    max_batch: int = 1024
    frames: int = 1

    def __post_init__(self):
        check_choice("render.backend", self.backend, ("gsplat", "reference", "auto"))
        check_choice("render.rig", self.rig, ("front", "nuscenes6"))
        check_range("render.width", self.width, 8, 1024)
        check_range("render.height", self.height, 8, 1024)
        check_range("render.gaussians", self.gaussians, 0, 10_000_000)
        check_range("render.actor_gaussians", self.actor_gaussians, 8, 100_000)
        check_range("render.max_batch", self.max_batch, 1, 1_000_000)
        check_range("render.frames", self.frames, 1, 8)


@dataclass(frozen=True)
class ParallelConfig:
    """Where training runs (section `train`; execution only: changing it never changes
    the algorithm, and a run resumes under other values). devices: "all" or "N", the
    first N devices of all processes (`agents.sharding`); the env batch (`ppo.num_envs`)
    is sharded over them, parameters replicated. "1" on one process is today's
    single-device program. Several processes (hosts): coordinator_address
    ("host:port" of process 0), num_processes, process_id, each falling back to
    JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID when unset ("", 0, -1)."""

    devices: str = "1"
    coordinator_address: str = ""
    num_processes: int = 0
    process_id: int = -1

    def __post_init__(self):
        if self.devices != "all" and not (self.devices.isdigit() and int(self.devices) >= 1):
            raise ConfigError(f"'train.devices' is {self.devices!r}; allowed: all or a whole number >= 1")
        check_range("train.num_processes", self.num_processes, 0, 100_000)
        check_range("train.process_id", self.process_id, -1, 100_000)


@dataclass(frozen=True)
class LogConfig:
    progress: bool = True
    tensorboard: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """Top level of configs/*.yaml. `seeds` independent runs are trained at once (jax.vmap)."""

    seed: int = 0
    seeds: int = 1
    env: EnvConfig = EnvConfig(substeps=5, obs="vector")
    scenarios: ScenarioConfig = ScenarioConfig()
    daa: DAASettings = DAASettings()
    ctg: CTGSettings = CTGSettings()
    network: NetworkConfig = NetworkConfig()
    il: ILConfig = ILConfig()
    ppo: PPOConfig = PPOConfig()
    eval: EvalConfig = EvalConfig()
    log: LogConfig = LogConfig()
    render: RenderConfig = RenderConfig()
    train: ParallelConfig = ParallelConfig()

    def __post_init__(self):
        check_range("seeds", self.seeds, 1, 1024)
        needs = {"cnn": "bev", "impala": "camera", "mlp": "vector", "attention": "vector"}[self.network.encoder]
        if self.env.obs != needs:
            raise ConfigError(
                f"'network.encoder' {self.network.encoder} needs 'env.obs' = '{needs}' (got '{self.env.obs}')"
            )
        if self.il.teacher and self.env.obs != "camera":
            raise ConfigError("'il.teacher' (a vector policy labelling DAgger states) needs 'env.obs' = 'camera'")
        if self.network.head == "discrete" and self.env.action_space != "discrete":
            raise ConfigError("'network.head' discrete needs 'env.action_space' = 'discrete'")
        if self.network.head == "continuous" and self.env.action_space != "continuous":
            raise ConfigError("'network.head' continuous needs 'env.action_space' = 'continuous'")
        if self.network.anchor_mask and (self.network.head != "discrete" or self.env.obs != "vector"):
            raise ConfigError("'network.anchor_mask' needs 'network.head' = 'discrete' and 'env.obs' = 'vector' "
                              "(the mask reads the ego speed from the vector observation)")  # fmt: skip
        if self.train.devices != "all" and self.ppo.num_envs % int(self.train.devices):
            raise ConfigError(f"'train.devices' ({self.train.devices}) must divide 'ppo.num_envs' ({self.ppo.num_envs}): "
                              "each device steps an equal share of the envs")  # fmt: skip
        if self.env.obs == "camera" and self.train.devices != "1":
            raise ConfigError(f"'train.devices' is {self.train.devices!r}, but camera training (env.obs: camera) runs "
                              "on one device (its torch renderer is not sharded); set train.devices: 1")  # fmt: skip


def config_from_dict(data: dict) -> TrainConfig:
    """Validate a nested dict over the defaults (sections given in part keep the rest)."""
    return dataclass_from_dict(
        TrainConfig, _merge(config_to_dict(TrainConfig()), _devices_as_text(_coerce(data or {})))
    )


def _devices_as_text(data: dict) -> dict:
    """`train.devices` is "all" or a count: YAML (and `_coerce`) read `4` as a number."""
    train = data.get("train")
    if (
        isinstance(train, dict)
        and isinstance(train.get("devices"), (int, float))
        and not isinstance(train["devices"], bool)
    ):
        d = train["devices"]
        if d != int(d):
            raise ConfigError(f"'train.devices' is {d!r}; allowed: all or a whole number >= 1")
        data = dict(data, train=dict(train, devices=str(int(d))))
    return data


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def _coerce(node):
    """YAML 1.1 reads `1e-4` as a string: turn numeric-looking strings into floats."""
    if isinstance(node, dict):
        return {k: _coerce(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_coerce(v) for v in node]
    if isinstance(node, str):
        try:
            return float(node)
        except ValueError:
            return node
    return node


def load_config(path: str | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config (None: the built-in defaults), apply `key=value` overrides, validate."""
    import yaml

    data: dict = {}
    if path:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return config_from_dict(apply_overrides(data, list(overrides or [])))


def config_to_dict(cfg) -> dict:
    """Plain nested dict (tuples as lists), e.g. to write the resolved config next to a run."""

    def conv(v):
        if isinstance(v, tuple):
            return [conv(x) for x in v]
        return v

    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        out[f.name] = config_to_dict(v) if dataclasses.is_dataclass(v) else conv(v)
    return out
