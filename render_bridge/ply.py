"""3DGS scenes in the standard PLY layout (original 3DGS code, gsplat's exporter, viewers).

One `vertex` element with float properties x, y, z, nx, ny, nz, f_dc_0..2,
f_rest_0..(3*(K-1)-1), opacity, scale_0..2, rot_0..3: opacity is a logit, scales are
log standard deviations, rot is a wxyz quaternion (not necessarily unit), f_dc the SH
DC band and f_rest the higher bands stored channel-major (all of red, then green, then
blue), as the original code writes `features_rest.transpose(1, 2).flatten(1)`.

Reading and writing use numpy only (binary little/big endian and ascii are read; binary
little endian is written). `transform` maps a reconstruction into the scenario frame by
a similarity (rotation, uniform scale, translation), rotating SH bands with it.

Loading validates what it reads and raises `PLYError` (a ValueError) naming the file and
the property: a malformed header, a body shorter than the vertex count says, non-finite
values in any property, means beyond `MAX_COORD` m, log-scales outside
[`MIN_LOG_SCALE`, `MAX_LOG_SCALE`] (so exp() cannot overflow or vanish in float32) and
zero-length quaternions. `save` writes atomically (temp file in the same folder + rename).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from jaxsim.io_utils import atomic_write
from render_bridge import sh as sh_lib
from render_bridge.scene import GaussianSet, quat_multiply, rotmat_to_quat

PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
             "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
             "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}  # fmt: skip
MAX_COORD = 1.0e6  # m, |x|, |y|, |z| of a mean
MIN_LOG_SCALE, MAX_LOG_SCALE = -30.0, 20.0  # exp() in [9e-14, 4.9e8] m
MAX_VERTICES = 200_000_000


class PLYError(ValueError):
    """A PLY file is malformed or holds values no 3DGS scene can have."""


def _read_header(f, path: str = "PLY file"):
    lines = []
    while True:
        line = f.readline(4096)
        if not line or len(lines) > 10_000:
            raise PLYError(f"{path}: PLY header has no end_header line")
        line = line.decode("ascii", errors="replace").strip()
        lines.append(line)
        if line == "end_header":
            return lines


def read_vertices(path: str) -> np.ndarray:
    """The `vertex` element of a PLY file as a numpy structured array (PLYError naming the file)."""
    with open(path, "rb") as f:
        header = _read_header(f, path)
        if header[0] != "ply":
            raise PLYError(f"{path} is not a PLY file (first line {header[0][:80]!r})")
        fmt = next((h.split()[1] for h in header if h.startswith("format") and len(h.split()) > 1), None)
        elements, current = [], None
        for h in header:
            parts = h.split()
            if parts[:1] == ["element"]:
                if len(parts) != 3 or not parts[2].isdigit():
                    raise PLYError(f"{path}: header line {h[:80]!r} must be 'element NAME COUNT' with COUNT >= 0")
                current = (parts[1], int(parts[2]), [])
                elements.append(current)
            elif parts[:1] == ["property"]:
                if current is None or len(parts) < 3:
                    raise PLYError(f"{path}: header line {h[:80]!r} must be 'property TYPE NAME' after an element line")
                if parts[1] == "list":
                    raise PLYError(f"{path}: list properties are not supported in element {current[0]!r}")
                if parts[1] not in PLY_TYPES:
                    raise PLYError(f"{path}: unknown property type {parts[1][:40]!r}; allowed: {sorted(PLY_TYPES)}")
                if any(parts[2] == n for n, _ in current[2]):
                    raise PLYError(f"{path}: property {parts[2][:40]!r} appears twice in element {current[0]!r}")
                current[2].append((parts[2], PLY_TYPES[parts[1]]))
        if not elements or elements[0][0] != "vertex":
            raise PLYError(f"{path}: the first element must be 'vertex', got {[e[0] for e in elements][:5]}")
        _, count, props = elements[0]
        if count > MAX_VERTICES:
            raise PLYError(f"{path}: element vertex has count {count}; allowed: at most {MAX_VERTICES}")
        if not props:
            raise PLYError(f"{path}: element vertex has no properties")
        if fmt == "ascii":
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    data = np.loadtxt(f, max_rows=count, ndmin=2) if count else np.zeros((0, len(props)))
            except (ValueError, UnicodeDecodeError) as err:
                raise PLYError(f"{path}: ascii vertex data cannot be read ({str(err).splitlines()[0][:200]})") from None
            if data.shape != (count, len(props)):
                raise PLYError(
                    f"{path}: ascii vertex data has shape {data.shape}; the header says {count} rows of {len(props)} properties"
                )
            out = np.empty(count, [(n, t) for n, t in props])
            for k, (n, _) in enumerate(props):
                out[n] = data[:, k]
            return out
        endian = {"binary_little_endian": "<", "binary_big_endian": ">"}.get(fmt)
        if endian is None:
            raise PLYError(f"{path}: format {fmt!r}; allowed: ascii, binary_little_endian, binary_big_endian")
        dtype = np.dtype([(n, endian + t) for n, t in props])
        body = f.read(dtype.itemsize * count)
        if len(body) < dtype.itemsize * count:
            raise PLYError(f"{path}: truncated: the header says {count} vertices ({dtype.itemsize * count} bytes), "
                           f"the file holds {len(body)} bytes of vertex data")  # fmt: skip
        return np.frombuffer(body, dtype=dtype, count=count)


def _check_finite(path: str, v: np.ndarray) -> None:
    for n in v.dtype.names:
        col = np.asarray(v[n], np.float64)
        if not np.all(np.isfinite(col)):
            i = int(np.argmin(np.isfinite(col)))
            raise PLYError(f"{path}: property {n!r} of vertex {i} is {col[i]}; allowed: finite values")


def _check_range(path: str, v: np.ndarray, names, lo: float, hi: float, what: str) -> None:
    for n in names:
        col = np.asarray(v[n], np.float64)
        bad = (col < lo) | (col > hi)
        if bad.any():
            i = int(np.argmax(bad))
            raise PLYError(f"{path}: property {n!r} of vertex {i} is {col[i]:.6g}; allowed: [{lo:g}, {hi:g}] ({what})")


def load(path: str, device=None) -> GaussianSet:
    """A `GaussianSet` (activated opacities, linear scales, unit quats, RGB + SH bands) from a 3DGS PLY."""
    v = read_vertices(path)
    names = v.dtype.names
    need = [
        "x",
        "y",
        "z",
        "f_dc_0",
        "f_dc_1",
        "f_dc_2",
        "opacity",
        "scale_0",
        "scale_1",
        "scale_2",
        "rot_0",
        "rot_1",
        "rot_2",
        "rot_3",
    ]
    missing = [n for n in need if n not in names]
    if missing:
        raise PLYError(f"{path}: missing 3DGS properties {missing}; a 3DGS PLY has {need} and f_rest_*")
    col = lambda *ks: np.stack([np.asarray(v[k], np.float64) for k in ks], -1)  # noqa: E731
    rest_names = [n for n in names if n.startswith("f_rest_")]
    if any(not n[len("f_rest_") :].isdigit() for n in rest_names):
        raise PLYError(f"{path}: f_rest properties must be named f_rest_<number>, got {rest_names[:6]}")
    rest_names = sorted(rest_names, key=lambda n: int(n.split("_")[-1]))
    if len(rest_names) % 3:
        raise PLYError(f"{path}: {len(rest_names)} f_rest properties is not a multiple of 3")
    k1 = len(rest_names) // 3
    try:
        sh_lib.degree_of(k1 + 1)  # validates the count
    except ValueError as err:
        raise PLYError(f"{path}: {len(rest_names)} f_rest properties: {err}") from None
    _check_finite(path, v)
    _check_range(path, v, ("x", "y", "z"), -MAX_COORD, MAX_COORD, "metres")
    _check_range(path, v, ("scale_0", "scale_1", "scale_2"), MIN_LOG_SCALE, MAX_LOG_SCALE, "log standard deviation")
    quats = col("rot_0", "rot_1", "rot_2", "rot_3")
    norm = np.linalg.norm(quats, axis=1, keepdims=True)
    if len(quats) and not np.all(norm > 1e-12):
        i = int(np.argmin(norm[:, 0] > 1e-12))
        raise PLYError(f"{path}: rot_0..rot_3 of vertex {i} is a zero quaternion; allowed: any non-zero quaternion")
    quats /= np.maximum(norm, 1e-12)
    logit = np.asarray(v["opacity"], np.float64)
    arrays = {
        "means": col("x", "y", "z"),
        "quats": quats,
        "scales": np.exp(col("scale_0", "scale_1", "scale_2")),
        "opacities": 0.5 * (1.0 + np.tanh(0.5 * logit)),  # the logistic function, no overflow
        "colors": sh_lib.sh0_to_rgb(col("f_dc_0", "f_dc_1", "f_dc_2")),
        "sh_rest": col(*rest_names).reshape(-1, 3, k1).transpose(0, 2, 1) if k1 else None,
    }
    return GaussianSet.from_numpy(arrays, device=device)


def save(path: str, g: GaussianSet) -> None:
    """Write a single (N,) GaussianSet as a binary little-endian 3DGS PLY."""
    a = g.numpy()
    n = a["means"].shape[0]
    rest = a["sh_rest"]
    k1 = 0 if rest is None else rest.shape[1]
    opac = np.clip(a["opacities"].astype(np.float64), 1e-7, 1 - 1e-7)
    cols = {
        **{c: a["means"][:, i] for i, c in enumerate("xyz")},
        **{f"n{c}": np.zeros(n) for c in "xyz"},
        **{f"f_dc_{i}": sh_lib.rgb_to_sh0(a["colors"])[:, i] for i in range(3)},
        **({f"f_rest_{i}": rest.transpose(0, 2, 1).reshape(n, -1)[:, i] for i in range(3 * k1)} if k1 else {}),
        "opacity": np.log(opac / (1 - opac)),
        **{f"scale_{i}": np.log(np.maximum(a["scales"][:, i], 1e-12)) for i in range(3)},
        **{f"rot_{i}": a["quats"][:, i] for i in range(4)},
    }
    dtype = np.dtype([(k, "<f4") for k in cols])
    data = np.empty(n, dtype)
    for k, col in cols.items():
        data[k] = col
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    header += [f"property float {k}" for k in cols] + ["end_header"]
    with atomic_write(path, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        f.write(data.tobytes())


def similarity(scale: float = 1.0, rotation=None, translation=(0.0, 0.0, 0.0), yaw: float = 0.0) -> np.ndarray:
    """(4, 4) x -> scale * R x + t; R from a (3, 3) `rotation` or a yaw (rad) about +z."""
    rot = np.asarray(rotation, np.float64) if rotation is not None else np.array(
        [[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0], [0, 0, 1]])  # fmt: skip
    m = np.eye(4)
    m[:3, :3] = scale * rot
    m[:3, 3] = translation
    return m


def transform(g: GaussianSet, matrix) -> GaussianSet:
    """Apply a similarity (4, 4) to a single (N,) set: means, orientations, scales and SH bands."""
    m = np.asarray(matrix, np.float64)
    lin = m[:3, :3]
    s = np.cbrt(np.linalg.det(lin))
    if not s > 0:
        raise ValueError("transform matrix must have a positive determinant (no mirroring)")
    rot = lin / s
    if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-4):
        raise ValueError("transform matrix must be a similarity: rotation x uniform scale + translation")
    dev = g.means.device
    rot_t = torch.as_tensor(rot, dtype=torch.float32, device=dev)
    means = g.means @ rot_t.T * float(s) + torch.as_tensor(m[:3, 3], dtype=torch.float32, device=dev)
    quats = quat_multiply(rotmat_to_quat(rot_t)[None].expand_as(g.quats), g.quats)
    rest = g.sh_rest
    if rest is not None:
        full = sh_lib.sh_rotation(rot, g.sh_degree)  # (K, K); the DC band is invariant
        r = torch.as_tensor(full[1:, 1:], dtype=torch.float32, device=dev)
        rest = torch.einsum("kj,njc->nkc", r, rest)
    return GaussianSet(means, quats, g.scales * float(s), g.opacities, g.colors, rest)
