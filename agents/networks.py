"""Policy/value networks in Flax NNX, used functionally: `apply(params, obs)`.

    net = make_network(net_cfg, env_cfg, obs_shape, key)
    out = net.apply(net.params, obs)        # obs (..., D) or (..., H, W, C)

The module is built once and split (`nnx.split`) into a static graph and a plain nested
dict of arrays (`params`), which is what optax, `jax.vmap` over seeds, and orbax see.
`apply` merges them back inside the traced function, so the jitted core stays purely
functional (the approach the NNX docs recommend for `lax.scan` training loops).

Encoders: "mlp" over the flat vector observation; "attention" over agent and lane
tokens with the ego/route/road summary as the query (masked by the tokens' valid
flags); "cnn" over the BEV raster; "impala" over camera images (IMPALA residual CNN per
camera, shared weights) plus the ego-state vector, for camera observations
`{"image": (..., C, H, W, 3) uint8, "ego": (..., E)}` (obs_shape is then a dict of
shapes, with "privileged": (D,) sizing the optional perception head). Heads
(`PolicyOutput`): RAD's decoupled categorical heads over the lateral and longitudinal
anchors, or a Gaussian over normalised [accel, steer]; each with one value per reward
group (`values[..., 0]` lateral, `values[..., 1]` longitudinal); camera networks add
`perception`, a prediction of the privileged vector observation (RAD trains perception
before planning; here it is an auxiliary loss).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx, struct

from jaxsim.actions import DiscreteActionSpec
from jaxsim.observations import split_vector


@struct.dataclass
class PolicyOutput:
    """Network output for a batch (...). Discrete: logits_lat (..., 61), logits_lon (..., 61).
    Continuous: mean (..., 2), log_std (..., 2) over normalised [accel, steer].
    values (..., 2): [lateral, longitudinal] value estimates."""

    values: jnp.ndarray
    logits_lat: jnp.ndarray | None = None
    logits_lon: jnp.ndarray | None = None
    mean: jnp.ndarray | None = None
    log_std: jnp.ndarray | None = None
    perception: jnp.ndarray | None = None  # (..., D) predicted privileged observation (camera nets)


class MLP(nnx.Module):
    """Two hidden layers with layer norm; `out=0` returns the hidden features."""

    def __init__(self, din: int, hidden: int, out: int, rngs: nnx.Rngs, out_scale: float = 1.0):
        self.fc1 = nnx.Linear(din, hidden, rngs=rngs)
        self.ln1 = nnx.LayerNorm(hidden, rngs=rngs)
        self.fc2 = nnx.Linear(hidden, hidden, rngs=rngs)
        self.out = (
            nnx.Linear(hidden, out, rngs=rngs, kernel_init=nnx.initializers.orthogonal(out_scale)) if out else None
        )

    def __call__(self, x):
        x = nnx.relu(self.fc2(nnx.relu(self.ln1(self.fc1(x)))))
        return self.out(x) if self.out is not None else x


class VectorMLPEncoder(nnx.Module):
    def __init__(self, obs_dim: int, hidden: int, rngs: nnx.Rngs):
        self.mlp = MLP(obs_dim, hidden, 0, rngs)
        self.features = hidden

    def __call__(self, obs):
        return self.mlp(obs)


class TokenEncoder(nnx.Module):
    """Ego query attends over agent and lane tokens (multi-head, masked by valid flags)."""

    def __init__(self, env_cfg, hidden: int, embed: int, num_heads: int, rngs: nnx.Rngs):
        from jaxsim.observations import vector_layout

        lay = vector_layout(env_cfg)
        ego_dim = sum(b - a for n, (a, b, _) in lay.items() if n in ("ego", "route", "road", "gaps"))
        self.env_cfg = env_cfg
        self.ego = nnx.Linear(ego_dim, embed, rngs=rngs)
        self.agent = nnx.Linear(lay["agents"][2][-1] + 1, embed, rngs=rngs)  # + token type
        self.lane = nnx.Linear(lay["lanes"][2][-1] + 1, embed, rngs=rngs)
        self.q = nnx.Linear(embed, embed, rngs=rngs)
        self.kv = nnx.Linear(embed, 2 * embed, rngs=rngs)
        self.num_heads = num_heads
        self.post = MLP(2 * embed, hidden, 0, rngs)
        self.features = hidden

    def __call__(self, obs):
        blocks = split_vector(obs, self.env_cfg)
        own = [blocks["ego"], blocks["route"].reshape(obs.shape[:-1] + (-1,)), blocks["road"]]
        ego_in = jnp.concatenate(own + ([blocks["gaps"]] if "gaps" in blocks else []), axis=-1)
        ego = nnx.relu(self.ego(ego_in))
        ag = blocks["agents"]
        ln = blocks["lanes"].reshape(obs.shape[:-1] + (-1, blocks["lanes"].shape[-1]))  # lanes x points -> tokens
        ag_tok = self.agent(jnp.concatenate([ag, jnp.zeros_like(ag[..., :1])], axis=-1))
        ln_tok = self.lane(jnp.concatenate([ln, jnp.ones_like(ln[..., :1])], axis=-1))
        tokens = nnx.relu(jnp.concatenate([ag_tok, ln_tok], axis=-2))  # (..., K+M, E)
        valid = jnp.concatenate([ag[..., -1], ln[..., -1]], axis=-1) > 0.5  # last feature = valid flag
        e, h = tokens.shape[-1], self.num_heads
        q = self.q(ego).reshape(ego.shape[:-1] + (h, e // h))
        k, v = jnp.split(self.kv(tokens), 2, axis=-1)
        k = k.reshape(k.shape[:-1] + (h, e // h))
        v = v.reshape(v.shape[:-1] + (h, e // h))
        logits = jnp.einsum("...hd,...nhd->...hn", q, k) / jnp.sqrt(e // h)
        logits = jnp.where(valid[..., None, :], logits, -1e9)
        w = jax.nn.softmax(logits, axis=-1) * jnp.any(valid, axis=-1)[..., None, None]
        ctx = jnp.einsum("...hn,...nhd->...hd", w, v).reshape(ego.shape)
        return self.post(jnp.concatenate([ego, ctx], axis=-1))


class BEVEncoder(nnx.Module):
    """Three stride-2 convolutions, global average pool, dense. Input (..., H, W, C)."""

    def __init__(self, channels: int, hidden: int, rngs: nnx.Rngs):
        self.c1 = nnx.Conv(channels, 32, (5, 5), strides=(2, 2), rngs=rngs)
        self.c2 = nnx.Conv(32, 64, (3, 3), strides=(2, 2), rngs=rngs)
        self.c3 = nnx.Conv(64, 64, (3, 3), strides=(2, 2), rngs=rngs)
        self.fc = nnx.Linear(64 * 4, hidden, rngs=rngs)
        self.features = hidden

    def __call__(self, obs):
        lead = obs.shape[:-3]
        x = obs.reshape((-1,) + obs.shape[-3:])
        x = nnx.relu(self.c3(nnx.relu(self.c2(nnx.relu(self.c1(x))))))
        # 2x2 spatial pooling keeps coarse left/right, ahead/behind layout
        hh, ww = x.shape[1] // 2, x.shape[2] // 2
        quads = [x[:, :hh, :ww], x[:, :hh, ww:], x[:, hh:, :ww], x[:, hh:, ww:]]
        x = jnp.concatenate([q.mean(axis=(1, 2)) for q in quads], axis=-1)
        return nnx.relu(self.fc(x)).reshape(lead + (-1,))


# flax >= 0.12 wants sub-module lists wrapped in nnx.List; older releases take plain lists
_ModuleList = getattr(nnx, "List", list)


class ResidualBlock(nnx.Module):
    """relu -> conv3x3 -> relu -> conv3x3, plus the input (IMPALA's residual block)."""

    def __init__(self, ch: int, rngs: nnx.Rngs, dtype=jnp.float32):
        self.c1 = nnx.Conv(ch, ch, (3, 3), dtype=dtype, rngs=rngs)
        self.c2 = nnx.Conv(ch, ch, (3, 3), dtype=dtype, rngs=rngs)

    def __call__(self, x):
        return x + self.c2(nnx.relu(self.c1(nnx.relu(x))))


class ImpalaStage(nnx.Module):
    """conv3x3 -> max-pool 3x3 stride 2 -> two residual blocks."""

    def __init__(self, cin: int, ch: int, rngs: nnx.Rngs, dtype=jnp.float32):
        self.conv = nnx.Conv(cin, ch, (3, 3), dtype=dtype, rngs=rngs)
        self.res = _ModuleList([ResidualBlock(ch, rngs, dtype), ResidualBlock(ch, rngs, dtype)])

    def __call__(self, x):
        x = nnx.max_pool(self.conv(x), (3, 3), strides=(2, 2), padding="SAME")
        for block in self.res:
            x = block(x)
        return x


class CameraEncoder(nnx.Module):
    """IMPALA CNN (Espeholt et al. 2018) on every camera with shared weights, plus the ego state.

    image (..., C, H, W, 3) uint8 (normalised to [0, 1] here, inside jit); a stride-2
    stem halves the resolution first when H or W exceeds 64 (128 px images then cost
    what 64 px ones do in the residual stages). ego (..., E) float32 (speed, route).
    Features: dense(concat(per-camera features, ego embedding)), float32.
    dtype: compute type of the convolutions and the image dense layer (bfloat16 halves
    their memory traffic and runs on tensor cores; parameters stay float32).
    """

    def __init__(self, image_shape: tuple, ego_dim: int, hidden: int, channels: tuple, rngs: nnx.Rngs,
                 dtype=jnp.float32):  # fmt: skip
        c, h, w, _ = image_shape
        self.dtype = dtype
        stem = nnx.Conv(3, channels[0], (4, 4), strides=(2, 2), dtype=dtype, rngs=rngs) if max(h, w) > 64 else None
        self.stem = nnx.data(stem) if hasattr(nnx, "data") else stem
        cin = channels[0] if self.stem is not None else 3
        h, w = (-(-h // 2), -(-w // 2)) if self.stem is not None else (h, w)
        stages = []
        for ch in channels:
            stages.append(ImpalaStage(cin, ch, rngs, dtype))
            cin, h, w = ch, -(-h // 2), -(-w // 2)
        self.stages = _ModuleList(stages)
        self.cam_fc = nnx.Linear(h * w * cin, hidden, dtype=dtype, rngs=rngs)
        ego = nnx.Linear(ego_dim, 64, rngs=rngs) if ego_dim else None
        self.ego = nnx.data(ego) if hasattr(nnx, "data") else ego
        self.fc = nnx.Linear(c * hidden + (64 if ego_dim else 0), hidden, rngs=rngs)
        self.features = hidden

    def __call__(self, obs):
        img = obs["image"]
        lead = img.shape[:-4]
        x = img.reshape((-1,) + img.shape[-3:]).astype(self.dtype) * jnp.asarray(1.0 / 255.0, self.dtype)
        if self.stem is not None:
            x = nnx.relu(self.stem(x))
        for stage in self.stages:
            x = stage(x)
        x = nnx.relu(self.cam_fc(nnx.relu(x).reshape(x.shape[0], -1))).astype(jnp.float32)
        feats = [x.reshape(lead + (-1,))]  # cameras side by side
        if self.ego is not None:
            feats.append(nnx.relu(self.ego(obs["ego"])))
        return nnx.relu(self.fc(jnp.concatenate(feats, axis=-1)))


class ActorCritic(nnx.Module):
    """Encoder -> separate actor and critic MLPs; discrete or continuous actor head."""

    def __init__(self, cfg, env_cfg, obs_shape, rngs: nnx.Rngs, spec: DiscreteActionSpec = DiscreteActionSpec()):
        perception = None
        if cfg.encoder == "impala":
            ego_dim = obs_shape["ego"][-1] if "ego" in obs_shape else 0
            dtype = jnp.dtype(cfg.compute_dtype)
            self.encoder = CameraEncoder(obs_shape["image"], ego_dim, cfg.hidden, tuple(cfg.channels), rngs, dtype)
            if obs_shape.get("privileged"):
                perception = MLP(self.encoder.features, cfg.hidden, obs_shape["privileged"][-1], rngs)
        elif cfg.encoder == "mlp":
            self.encoder = VectorMLPEncoder(obs_shape[-1], cfg.hidden, rngs)
        elif cfg.encoder == "attention":
            self.encoder = TokenEncoder(env_cfg, cfg.hidden, cfg.embed, cfg.num_heads, rngs)
        else:
            self.encoder = BEVEncoder(obs_shape[-1], cfg.hidden, rngs)
        self.perception = nnx.data(perception) if hasattr(nnx, "data") else perception
        f = self.encoder.features
        self.discrete = cfg.head == "discrete"
        n_out = spec.num_lat + spec.num_lon if self.discrete else 2
        self.num_lat = spec.num_lat
        self.spec = spec
        self.anchor_mask = bool(getattr(cfg, "anchor_mask", False)) and self.discrete
        self.actor = MLP(f, cfg.hidden, n_out, rngs, out_scale=0.01)
        self.critic = MLP(f, cfg.hidden, 2, rngs, out_scale=1.0)
        if not self.discrete:
            self.log_std = nnx.Param(jnp.full((2,), cfg.init_log_std, jnp.float32))

    def __call__(self, obs) -> PolicyOutput:
        z = self.encoder(obs)
        a = self.actor(z)
        values = self.critic(z)
        perception = self.perception(z) if self.perception is not None else None
        if self.discrete:
            lat, lon = a[..., : self.num_lat], a[..., self.num_lat :]
            if self.anchor_mask:
                lat, lon = mask_unreachable(lat, lon, obs, self.spec)
            return PolicyOutput(values=values, logits_lat=lat, logits_lon=lon, perception=perception)
        log_std = jnp.broadcast_to(self.log_std[...], a.shape)
        return PolicyOutput(values=values, mean=a, log_std=log_std, perception=perception)


MASK_PENALTY = 20.0  # logit units: a masked anchor keeps ~e^-20 of its weight (finite IL losses)


def mask_unreachable(logits_lat, logits_lon, obs, spec: DiscreteActionSpec):
    """Lower the logits of anchors unreachable from the observed speed (vector obs: the
    ego speed is its first entry, scaled by `SPEED_SCALE`) by `MASK_PENALTY`."""
    from jaxsim.actions import speed_anchor_masks
    from jaxsim.observations import SPEED_SCALE

    lat_ok, lon_ok = speed_anchor_masks(obs[..., 0] * SPEED_SCALE, spec)
    return jnp.where(lat_ok, logits_lat, logits_lat - MASK_PENALTY), jnp.where(
        lon_ok, logits_lon, logits_lon - MASK_PENALTY
    )


@dataclasses.dataclass(frozen=True)
class Network:
    """A built network: `apply(params, obs) -> PolicyOutput`; `params` a nested dict of arrays."""

    apply: Callable
    params: dict
    discrete: bool


def _to_pure(state):
    return nnx.to_pure_dict(state) if hasattr(nnx, "to_pure_dict") else state.to_pure_dict()


def normalise_obs_shape(obs_shape):
    """A shape tuple, or for camera observations a dict of shape tuples (e.g. read from JSON)."""
    if isinstance(obs_shape, dict):
        return {k: tuple(int(d) for d in v) for k, v in obs_shape.items()}
    return tuple(int(d) for d in obs_shape)


def make_network(cfg, env_cfg, obs_shape, key: jax.Array) -> Network:
    """Build the network for per-env observations of shape `obs_shape` (a tuple, or a dict
    of tuples for camera observations); params from `key`.

    `apply` works for any params of the same structure (other seeds: `init_params`).
    """
    model = ActorCritic(cfg, env_cfg, normalise_obs_shape(obs_shape), nnx.Rngs(key))
    graphdef, state = nnx.split(model, nnx.Param)

    def apply(params, obs):
        st = jax.tree.map(lambda x: x, state)  # fresh container per trace
        nnx.replace_by_pure_dict(st, params)
        return nnx.merge(graphdef, st)(obs)

    return Network(apply=apply, params=_to_pure(state), discrete=cfg.head == "discrete")


def init_params(cfg, env_cfg, obs_shape: tuple, keys: jax.Array) -> dict:
    """Initial params for each key in `keys` (S, 2), stacked along a leading seed axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *[make_network(cfg, env_cfg, obs_shape, k).params for k in keys])
