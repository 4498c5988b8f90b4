"""Pose algebra for the reconstruction, in torch (no JAX): ego poses -> camera view
matrices, the logged actor poses of a scenario, actor-box membership of points, and
posing per-Gaussian actor ids (street-Gaussians style).

Frames follow `render_bridge.cameras`: world z up, yaw counter-clockwise from +x; ego
x forward / y left; cameras OpenCV (x right, y down, z forward). Ego poses are
(..., 3) [x m, y m, yaw rad]; actor poses (..., 1 + A, 4) [x, y, yaw, visible 0/1]
with slot 0 the ego.
"""

from __future__ import annotations

import numpy as np
import torch

from render_bridge.scene import quat_multiply, yaw_quat


def ego_to_world(ego: torch.Tensor) -> torch.Tensor:
    """(..., 4, 4) transforms of ego poses (..., 3) [x, y, yaw] on the ground plane z = 0."""
    x, y, yaw = ego.unbind(-1)
    c, s = torch.cos(yaw), torch.sin(yaw)
    z, o = torch.zeros_like(c), torch.ones_like(c)
    rows = [c, -s, z, x, s, c, z, y, z, z, o, z, z, z, z, o]
    return torch.stack(rows, -1).reshape(ego.shape[:-1] + (4, 4))


def rigid_inverse(m: torch.Tensor) -> torch.Tensor:
    """Inverse of rigid transforms (..., 4, 4)."""
    rt = m[..., :3, :3].transpose(-1, -2)
    out = torch.zeros_like(m)
    out[..., :3, :3] = rt
    out[..., :3, 3] = -(rt @ m[..., :3, 3:4])[..., 0]
    out[..., 3, 3] = 1.0
    return out


def view_matrices(ego: torch.Tensor, cam_to_ego: torch.Tensor) -> torch.Tensor:
    """World -> camera matrices (V, C, 4, 4) for ego poses (V, 3) and mounts (C, 4, 4)."""
    c2w = ego_to_world(ego)[:, None] @ cam_to_ego[None].to(ego)
    return rigid_inverse(c2w)


def log_actor_poses(bank, scenario_idx: int, draw_ego: bool = False) -> np.ndarray:
    """(T, 1 + A, 4) float32 logged actor poses of one scenario of a jaxsim bank (the same
    slots as `cameras.actor_poses`: ego first, visible = `draw_ego`; agents visible when valid)."""
    ego = np.asarray(bank.ego_traj[scenario_idx], np.float32)
    agents = np.asarray(bank.agent_traj[scenario_idx], np.float32)
    valid = np.asarray(bank.agent_valid[scenario_idx], np.float32)
    t = ego.shape[0]
    first = np.concatenate([ego[:, :3], np.full((t, 1), float(draw_ego), np.float32)], -1)
    rest = np.concatenate([agents[..., :3], valid[..., None]], -1)
    return np.concatenate([first[:, None], rest], 1).astype(np.float32)


def actor_sizes(bank, scenario_idx: int) -> np.ndarray:
    """(1 + A, 2) [length, width] m of the ego and the agents of one scenario."""
    ego = np.asarray(bank.ego_size[scenario_idx], np.float32)[None]
    return np.concatenate([ego, np.asarray(bank.agent_size[scenario_idx], np.float32)], 0)


def points_in_boxes(points: torch.Tensor, poses: torch.Tensor, sizes: torch.Tensor, margin: float = 0.3,
                    max_height: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Which actor box holds each point, and the point in that box's frame.

    points (P, 3) world; poses (P, 1 + A, 4) the actor poses at each point's frame;
    sizes (1 + A, 2) [length, width]. Returns actor slot (P,) int64 (-1 = static) and
    local coordinates (P, 3) (world coordinates for static points). Slot 0 (ego) and
    invisible actors never claim points.
    """
    d = points[:, None, :2] - poses[..., :2]  # (P, 1 + A, 2)
    c, s = torch.cos(poses[..., 2]), torch.sin(poses[..., 2])
    lx, ly = c * d[..., 0] + s * d[..., 1], -s * d[..., 0] + c * d[..., 1]
    inside = (lx.abs() <= 0.5 * sizes[:, 0] + margin) & (ly.abs() <= 0.5 * sizes[:, 1] + margin)
    inside &= (points[:, None, 2] <= max_height) & (poses[..., 3] > 0.5)
    inside[:, 0] = False
    slot = torch.where(inside.any(1), inside.float().argmax(1), torch.full_like(inside[:, 0], -1, dtype=torch.int64))
    k = slot.clamp_min(0)[:, None]
    local = torch.stack([lx.gather(1, k)[:, 0], ly.gather(1, k)[:, 0], points[:, 2]], -1)
    return slot, torch.where((slot >= 0)[:, None], local, points)


def pose_by_id(means: torch.Tensor, quats: torch.Tensor, opacities: torch.Tensor, actor: torch.Tensor,
               poses: torch.Tensor):  # fmt: skip
    """Place Gaussians that carry an actor id in the world (differentiable).

    means (N, 3), quats (N, 4) wxyz, opacities (N,) activated; actor (N,) float slot id
    (-1 = static background, already in the world frame); poses (1 + A, 4) of one frame.
    Actor Gaussians are rotated by their actor's yaw, translated to its (x, y) and hidden
    (opacity 0) when it is not visible. Returns (means, quats, opacities) in the world.
    """
    slot = actor.long()
    dyn = slot >= 0
    p = poses[slot.clamp_min(0)]  # (N, 4)
    c, s = torch.cos(p[:, 2]), torch.sin(p[:, 2])
    mx, my, mz = means.unbind(-1)
    moved = torch.stack([c * mx - s * my + p[:, 0], s * mx + c * my + p[:, 1], mz], -1)
    means_w = torch.where(dyn[:, None], moved, means)
    quats_w = torch.where(dyn[:, None], quat_multiply(yaw_quat(p[:, 2]), quats), quats)
    opac_w = torch.where(dyn, opacities * p[:, 3], opacities)
    return means_w, quats_w, opac_w
