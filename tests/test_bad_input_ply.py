"""Bad input: PLY files with non-finite or overflowing values, and random garbage (issue 18, finding 7)."""

import numpy as np
import pytest
import torch

from render_bridge import ply
from render_bridge.scene import GaussianSet

PROPS = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
         "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]  # fmt: skip


def _write(path, overrides=None, n=5, fmt="binary_little_endian"):
    rng = np.random.default_rng(0)
    data = np.zeros(n, [(p, "<f4") for p in PROPS])
    for p in PROPS:
        data[p] = rng.normal(size=n)
    data["rot_0"] = 1.0
    for (name, i), value in (overrides or {}).items():
        data[name][i] = value
    header = (
        ["ply", f"format {fmt} 1.0", f"element vertex {n}"] + [f"property float {p}" for p in PROPS] + ["end_header"]
    )
    with open(path, "wb") as f:
        f.write(("\n".join(header) + "\n").encode())
        if fmt == "ascii":
            f.write("\n".join(" ".join(repr(float(data[p][i])) for p in PROPS) for i in range(n)).encode() + b"\n")
        else:
            f.write(data.tobytes())
    return str(path)


def test_valid_file_loads(tmp_path):
    g = ply.load(_write(tmp_path / "ok.ply"))
    assert g.means.shape == (5, 3) and torch.isfinite(g.scales).all()
    assert ply.load(_write(tmp_path / "ok_ascii.ply", fmt="ascii")).means.shape == (5, 3)


@pytest.mark.parametrize(
    "prop, value, needle",
    [
        ("x", np.nan, "finite"),
        ("z", np.inf, "finite"),
        ("y", 1e30, "metres"),
        ("scale_1", 200.0, "log standard deviation"),  # exp overflows float32
        ("scale_0", -500.0, "log standard deviation"),  # exp underflows to 0
        ("opacity", np.nan, "finite"),
        ("f_dc_2", -np.inf, "finite"),
        ("rot_2", np.nan, "finite"),
    ],
)
def test_bad_values_are_refused_naming_file_and_property(tmp_path, prop, value, needle):
    for fmt in ("binary_little_endian", "ascii"):
        path = _write(tmp_path / f"bad_{fmt}.ply", {(prop, 3): value}, fmt=fmt)
        with pytest.raises(ply.PLYError) as err:
            ply.load(path)
        msg = str(err.value)
        assert path in msg and f"'{prop}'" in msg and "vertex 3" in msg and needle in msg


def test_zero_quaternion_and_truncated_body(tmp_path):
    path = _write(tmp_path / "q.ply", {(f"rot_{j}", 1): 0.0 for j in range(4)})
    with pytest.raises(ply.PLYError, match="zero quaternion"):
        ply.load(path)
    path = _write(tmp_path / "t.ply")
    raw = open(path, "rb").read()
    open(path, "wb").write(raw[:-10])
    with pytest.raises(ply.PLYError, match="truncated") as err:
        ply.load(path)
    assert path in str(err.value)


def test_save_is_atomic_and_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "scene.ply"
    g = ply.load(_write(path))
    ply.save(str(path), g)
    before = path.read_bytes()
    broken = GaussianSet(g.means, g.quats, g.scales, g.opacities, g.colors[:2], None)  # inconsistent sizes
    with pytest.raises(Exception):
        ply.save(str(path), broken)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["scene.ply"]


def test_random_garbage_never_crashes_or_loads_nonsense(tmp_path):
    """Property: random bytes, damaged headers and flipped bytes of a valid file either
    load as finite Gaussians or raise a ValueError naming the file; nothing else."""
    rng = np.random.default_rng(7)
    good = open(_write(tmp_path / "good.ply", n=40), "rb").read()
    head_end = good.index(b"end_header") + len("end_header\n")
    cases = [rng.bytes(int(rng.integers(0, 3000))) for _ in range(10)]
    cases += [
        b"ply\n" + rng.bytes(300),
        b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\n1 2\nx y z\n",
    ]
    cases += [b"ply\nformat binary_little_endian 1.0\nelement vertex -4\nend_header\n",
              b"ply\nproperty float x\nelement vertex 2\nend_header\n", b"ply\nformat binary_little_endian 1.0\n"]  # fmt: skip
    for _ in range(60):
        raw = bytearray(good)
        lo = 0 if rng.random() < 0.3 else head_end  # sometimes damage the header too
        for i in rng.integers(lo, len(raw), size=int(rng.integers(1, 12))):
            raw[i] = int(rng.integers(0, 256))
        cases.append(bytes(raw[: int(rng.integers(len(raw) * 3 // 4, len(raw) + 1))]))
    loaded = refused = 0
    for k, data in enumerate(cases):
        path = str(tmp_path / f"g{k}.ply")
        open(path, "wb").write(data)
        try:
            g = ply.load(path)
        except ValueError as err:
            assert path in str(err), (k, str(err))
            refused += 1
            continue
        for t in (g.means, g.quats, g.scales, g.opacities, g.colors):
            assert torch.isfinite(t).all(), k
        assert (g.scales > 0).all() and g.means.abs().max() <= ply.MAX_COORD
        loaded += 1
    assert refused > 40 and loaded + refused == len(cases)
