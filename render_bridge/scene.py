"""Gaussian scenes in torch: sets of 3D Gaussians, actor posing and per-env composition.

A `GaussianSet` is struct-of-arrays with any leading batch dims (`(..., N, ...)`), in the
layout gsplat takes: means m, unit quaternions wxyz, scales (standard deviations, m),
opacities in [0, 1] (already activated), colours RGB and optional higher SH bands.

A `SceneBank` holds, for every scenario of a jaxsim bank, one static background (padded
to a common count) and one Gaussian template per actor slot in the actor's own frame
(x forward, y left, z up, origin on the ground under the box centre). Slot 0 is the
ego, slots 1..A the scenario's agents. `SceneBank.compose` poses the templates from
simulator states and appends them to each env's background, so gsplat's batched API
draws many envs (each with its own scene) in one call. Padding Gaussians have zero
opacity: both backends cull them before projection.
"""

from __future__ import annotations

import dataclasses

import torch

FIELDS = ("means", "quats", "scales", "opacities", "colors")


@dataclasses.dataclass
class GaussianSet:
    """Gaussians with leading dims `...`: means (..., N, 3) m, quats (..., N, 4) wxyz,
    scales (..., N, 3) m, opacities (..., N), colors (..., N, 3) RGB (the SH DC band as
    colour), sh_rest (..., N, K-1, 3) higher SH bands or None (view-independent)."""

    means: torch.Tensor
    quats: torch.Tensor
    scales: torch.Tensor
    opacities: torch.Tensor
    colors: torch.Tensor
    sh_rest: torch.Tensor | None = None

    @property
    def num(self) -> int:
        return self.means.shape[-2]

    @property
    def sh_degree(self) -> int:
        k = 1 if self.sh_rest is None else 1 + self.sh_rest.shape[-2]
        return int(round(k**0.5)) - 1

    def map(self, fn) -> "GaussianSet":
        """Apply fn to every tensor (sh_rest too when present)."""
        kw = {f: fn(getattr(self, f)) for f in FIELDS}
        return GaussianSet(**kw, sh_rest=None if self.sh_rest is None else fn(self.sh_rest))

    def to(self, device=None, dtype=torch.float32) -> "GaussianSet":
        return self.map(lambda t: t.to(device=device, dtype=dtype))

    def count_visible(self) -> int:
        """Gaussians with opacity >= 1/255 (what a rasterizer keeps)."""
        return int((self.opacities >= 1.0 / 255.0).sum())

    @staticmethod
    def from_numpy(arrays: dict, device=None) -> "GaussianSet":
        kw = {f: torch.as_tensor(arrays[f], dtype=torch.float32, device=device) for f in FIELDS}
        rest = arrays.get("sh_rest")
        if rest is not None and rest.shape[-2] == 0:
            rest = None
        return GaussianSet(
            **kw, sh_rest=None if rest is None else torch.as_tensor(rest, dtype=torch.float32, device=device)
        )

    def numpy(self) -> dict:
        out = {f: getattr(self, f).detach().cpu().numpy() for f in FIELDS}
        out["sh_rest"] = None if self.sh_rest is None else self.sh_rest.detach().cpu().numpy()
        return out


def empty(n: int, sh_degree: int = 0, device=None) -> GaussianSet:
    """n padding Gaussians: zero opacity, unit quaternion, tiny scale at the origin."""
    quats = torch.zeros((n, 4), device=device)
    quats[:, 0] = 1.0
    rest = None if sh_degree == 0 else torch.zeros((n, (sh_degree + 1) ** 2 - 1, 3), device=device)
    return GaussianSet(torch.zeros((n, 3), device=device), quats, torch.full((n, 3), 1e-3, device=device),
                       torch.zeros((n,), device=device), torch.zeros((n, 3), device=device), rest)  # fmt: skip


def with_sh_degree(g: GaussianSet, degree: int) -> GaussianSet:
    """Pad (with zeros) or keep the SH bands so that g has exactly `degree`."""
    have = g.sh_degree
    if have == degree:
        return g
    if have > degree:
        raise ValueError(f"cannot lower SH degree {have} to {degree} without losing data")
    k = (degree + 1) ** 2 - 1
    rest = torch.zeros(g.means.shape[:-1] + (k, 3), dtype=g.means.dtype, device=g.means.device)
    if g.sh_rest is not None:
        rest[..., : g.sh_rest.shape[-2], :] = g.sh_rest
    return dataclasses.replace(g, sh_rest=rest)


def concat(sets: list[GaussianSet], dim: int = -2) -> GaussianSet:
    """Concatenate along the Gaussian axis (all sets must share leading dims and SH degree)."""
    degree = max(s.sh_degree for s in sets)
    sets = [with_sh_degree(s, degree) for s in sets]
    kw = {}
    for f in FIELDS:
        d = dim if getattr(sets[0], f).dim() == sets[0].means.dim() else dim + 1  # opacities have no last axis
        kw[f] = torch.cat([getattr(s, f) for s in sets], dim=d)
    rest = None if degree == 0 else torch.cat([s.sh_rest for s in sets], dim=dim - 1)
    return GaussianSet(**kw, sh_rest=rest)


def pad_to(g: GaussianSet, n: int) -> GaussianSet:
    """Append zero-opacity Gaussians to a single set (N, ...) until it has n."""
    if g.num > n:
        raise ValueError(f"set has {g.num} Gaussians, more than the padded size {n}")
    if g.num == n:
        return g
    return concat([g, empty(n - g.num, g.sh_degree, g.means.device)])


def stack(sets: list[GaussianSet]) -> GaussianSet:
    """Pad single sets to a common count and stack them on a new leading axis."""
    n = max(s.num for s in sets)
    degree = max(s.sh_degree for s in sets)
    sets = [pad_to(with_sh_degree(s, degree), n) for s in sets]
    kw = {f: torch.stack([getattr(s, f) for s in sets]) for f in FIELDS}
    rest = None if degree == 0 else torch.stack([s.sh_rest for s in sets])
    return GaussianSet(**kw, sh_rest=rest)


# ---------------------------------------------------------------- rotations
def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a * b of wxyz quaternions (..., 4)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], dim=-1)  # fmt: skip


def quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices from (not necessarily unit) wxyz quaternions (..., 4)."""
    q = q / torch.linalg.norm(q, dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(q.shape[:-1] + (3, 3))  # fmt: skip


def rotmat_to_quat(r: torch.Tensor) -> torch.Tensor:
    """Unit wxyz quaternion (..., 4) of rotation matrices (..., 3, 3) (robust branch choice)."""
    m = r
    t = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    cands = torch.stack([
        torch.stack([1 + t, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
        torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + 2 * m[..., 0, 0] - t, m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 + 2 * m[..., 1, 1] - t, m[..., 1, 2] + m[..., 2, 1]], -1),
        torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1], 1 + 2 * m[..., 2, 2] - t], -1),
    ], dim=-2)  # fmt: skip
    # the candidate with the largest norm is the numerically stable one
    best = torch.linalg.norm(cands, dim=-1).argmax(-1)
    q = torch.gather(cands, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    q = q / torch.linalg.norm(q, dim=-1, keepdim=True)
    return q * torch.where(q[..., :1] < 0, -1.0, 1.0)


def yaw_quat(yaw: torch.Tensor) -> torch.Tensor:
    """wxyz quaternions (..., 4) of rotations by yaw (...) rad about +z."""
    h = 0.5 * yaw
    z = torch.zeros_like(h)
    return torch.stack([torch.cos(h), z, z, torch.sin(h)], dim=-1)


def covariance(quats: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """3D covariances (..., 3, 3) = R S S R^T."""
    m = quat_to_rotmat(quats) * scales[..., None, :]
    return m @ m.transpose(-1, -2)


# ---------------------------------------------------------------- actors
def pose_actors(templates: GaussianSet, poses: torch.Tensor) -> GaussianSet:
    """Place actor templates in the world.

    templates: (..., A, M) Gaussians in each actor's frame.
    poses: (..., A, 4) [x m, y m, yaw rad, visible 0/1]; invisible actors get opacity 0.
    Returns (..., A * M) Gaussians in the world frame.
    """
    x, y, yaw, vis = poses.unbind(-1)
    c, s = torch.cos(yaw)[..., None], torch.sin(yaw)[..., None]  # (..., A, 1)
    mx, my, mz = templates.means.unbind(-1)
    means = torch.stack([c * mx - s * my + x[..., None], s * mx + c * my + y[..., None], mz], dim=-1)
    quats = quat_multiply(yaw_quat(yaw)[..., None, :].expand_as(templates.quats), templates.quats)
    opac = templates.opacities * vis[..., None]
    lead = means.shape[:-3]
    flat = lambda t: t.reshape(lead + (-1,) + t.shape[len(lead) + 2 :])  # noqa: E731
    rest = templates.sh_rest
    if rest is not None:  # SH bands would have to rotate with yaw; actors are view-independent
        raise ValueError("actor templates must be view-independent (sh_rest=None)")
    return GaussianSet(flat(means), flat(quats), flat(templates.scales.expand_as(means)), flat(opac),
                       flat(templates.colors.expand(means.shape)))  # fmt: skip


@dataclasses.dataclass
class SceneBank:
    """Per-scenario Gaussian scenes: background (S, Nb) and actor templates (S, 1 + A, M)."""

    background: GaussianSet
    actors: GaussianSet

    @property
    def num_scenes(self) -> int:
        return self.background.means.shape[0]

    @property
    def gaussians_per_env(self) -> int:
        return self.background.num + self.actors.means.shape[-3] * self.actors.num

    def to(self, device) -> "SceneBank":
        return SceneBank(self.background.to(device), self.actors.to(device))

    def compose(self, scenario_idx: torch.Tensor, poses: torch.Tensor) -> GaussianSet:
        """Every env's full scene: (B, Nb + (1 + A) * M) Gaussians.

        scenario_idx: (B,) int64 into the bank; poses: (B, 1 + A, 4) [x, y, yaw, visible].
        """
        bg = self.background.map(lambda t: t.index_select(0, scenario_idx))
        tmpl = self.actors.map(lambda t: t.index_select(0, scenario_idx))
        return concat([bg, pose_actors(tmpl, poses)])
