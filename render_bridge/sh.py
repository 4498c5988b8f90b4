"""Real spherical harmonics (degrees 0-3) as used by 3DGS, gsplat and the PLY format.

Colour of a Gaussian seen along unit direction d (from the camera centre to the mean):
rgb = max(sum_k sh[k] * Y_k(d) + 0.5, 0), with the sign conventions of the original
3DGS code. `sh_rotation` gives the matrix that rotates coefficients with the scene.
"""

from __future__ import annotations

import math

import numpy as np
import torch

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
      -0.4570457994644658, 1.445305721320277, -0.5900435899266435)  # fmt: skip


def num_coeffs(degree: int) -> int:
    return (degree + 1) ** 2


def degree_of(num: int) -> int:
    d = int(round(math.sqrt(num))) - 1
    if (d + 1) ** 2 != num or not 0 <= d <= 3:
        raise ValueError(f"{num} SH coefficients is not (degree+1)^2 for a degree in 0..3")
    return d


def rgb_to_sh0(rgb):
    return (rgb - 0.5) / C0


def sh0_to_rgb(sh0):
    return sh0 * C0 + 0.5


def basis(dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """SH basis values (..., (degree+1)^2) at unit directions dirs (..., 3)."""
    x, y, z = dirs[..., 0], dirs[..., 1], dirs[..., 2]
    out = [torch.full_like(x, C0)]
    if degree >= 1:
        out += [-C1 * y, C1 * z, -C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [C2[0] * xy, C2[1] * yz, C2[2] * (2 * zz - xx - yy), C2[3] * xz, C2[4] * (xx - yy)]
    if degree >= 3:
        out += [
            C3[0] * y * (3 * xx - yy), C3[1] * xy * z, C3[2] * y * (4 * zz - xx - yy),
            C3[3] * z * (2 * zz - 3 * xx - 3 * yy), C3[4] * x * (4 * zz - xx - yy),
            C3[5] * z * (xx - yy), C3[6] * x * (xx - 3 * yy),
        ]  # fmt: skip
    return torch.stack(out, dim=-1)


def eval_sh(sh: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Colours (..., 3) from coefficients sh (..., K, 3) and directions dirs (..., 3) (any length).

    Matches gsplat's `spherical_harmonics` followed by `clamp_min(colors + 0.5, 0)`.
    """
    d = dirs / torch.linalg.norm(dirs, dim=-1, keepdim=True).clamp_min(1e-12)
    y = basis(d, degree_of(sh.shape[-2]))  # (..., K)
    return torch.clamp_min(torch.einsum("...k,...kc->...c", y, sh) + 0.5, 0.0)


def sh_rotation(rot: np.ndarray, degree: int, num_dirs: int = 512) -> np.ndarray:
    """(K, K) matrix M with coefficients' = M @ coefficients when the scene rotates by `rot` (3, 3).

    The rotated colour field is f'(d) = f(R^T d); each band rotates within itself, so M is
    found exactly (up to float error) by least squares over many directions.
    """
    rng = np.random.default_rng(0)
    d = rng.normal(size=(num_dirs, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    b = basis(torch.as_tensor(d, dtype=torch.float64), degree).numpy()  # (D, K)
    b_rot = basis(torch.as_tensor(d @ rot, dtype=torch.float64), degree).numpy()  # Y(R^T d)
    m, *_ = np.linalg.lstsq(b, b_rot, rcond=None)  # b @ m = b_rot, so c' = m @ c
    return m
