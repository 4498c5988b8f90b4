"""Pose composition, JAX cameras, SH rotation, PLY round trip, the procedural world and DLPack (CPU)."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from builders import bank_of, straight_road

from render_bridge import cameras, ply, sh
from render_bridge import dlpack_bridge as bridge
from render_bridge.backends.reference import rasterize
from render_bridge.procedural_world import WorldConfig, build_background, build_scene_bank, scenario_dicts
from render_bridge.scene import GaussianSet, covariance, pose_actors, quat_to_rotmat, rotmat_to_quat

torch.set_num_threads(1)


def random_set(n, degree=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 4, generator=g)
    rest = None if degree == 0 else 0.3 * torch.randn(n, (degree + 1) ** 2 - 1, 3, generator=g)
    return GaussianSet(torch.randn(n, 3, generator=g) * 2 + torch.tensor([0, 0, 10.0]), q / q.norm(dim=-1, keepdim=True),
                       0.1 + 0.3 * torch.rand(n, 3, generator=g), 0.2 + 0.7 * torch.rand(n, generator=g),
                       torch.rand(n, 3, generator=g), rest)  # fmt: skip


def test_pose_actors_rotates_translates_and_hides():
    tmpl = random_set(5).map(lambda t: t[None])  # (A=1, M=5)
    poses = torch.tensor([[3.0, 4.0, math.pi / 2, 1.0]])
    out = pose_actors(tmpl, poses)
    rz = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_allclose(out.means, tmpl.means[0] @ rz.T + torch.tensor([3.0, 4.0, 0]), atol=1e-5)
    cov_world = rz @ covariance(tmpl.quats[0], tmpl.scales[0]) @ rz.T
    np.testing.assert_allclose(covariance(out.quats, out.scales), cov_world, atol=1e-5)
    hidden = pose_actors(tmpl, torch.tensor([[3.0, 4.0, 0.0, 0.0]]))
    assert float(hidden.opacities.max()) == 0.0


def test_quaternion_matrix_round_trip():
    q = random_set(50).quats
    q2 = rotmat_to_quat(quat_to_rotmat(q))
    np.testing.assert_allclose(torch.abs((q * q2).sum(-1)), 1.0, atol=1e-5)


def test_view_matrices_put_points_where_the_cameras_look():
    rig = cameras.RigConfig("nuscenes6", 160, 90)
    K = cameras.intrinsics(rig)
    fn = jax.jit(chex.assert_max_traces(lambda e: jax.vmap(lambda x: cameras.view_matrices(x, rig))(e), n=1))
    egos = jnp.array([[10.0, -5.0, 0.7, 3.0], [0.0, 0.0, -2.0, 0.0]])
    views = np.asarray(fn(egos))
    fn(egos + 1.0)  # no retrace
    assert views.shape == (2, 6, 4, 4)
    for e, ego in enumerate(np.asarray(egos)):
        for c, spec in enumerate(rig.specs):
            # a point 20 m out along the camera's yaw at its mount height lands on the image centre
            mount = np.array([spec.x, spec.y])
            yaw = ego[2] + math.radians(spec.yaw_deg)
            rot = np.array([[math.cos(ego[2]), -math.sin(ego[2])], [math.sin(ego[2]), math.cos(ego[2])]])
            p = ego[:2] + rot @ mount + 20 * np.array([math.cos(yaw), math.sin(yaw)])
            pc = views[e, c] @ np.array([p[0], p[1], spec.z, 1.0])
            assert pc[2] == pytest.approx(20.0, abs=1e-3)
            uv = K[c] @ pc[:3] / pc[2]
            assert uv[:2] == pytest.approx([80.0, 45.0], abs=1e-2)
    # rigid: rotation part orthonormal
    r = views[..., :3, :3]
    np.testing.assert_allclose(r @ np.swapaxes(r, -1, -2), np.broadcast_to(np.eye(3), r.shape), atol=1e-5)


def test_rig_config_is_validated():
    with pytest.raises(ValueError, match="rig"):
        cameras.RigConfig("fisheye")
    with pytest.raises(ValueError, match="width"):
        cameras.RigConfig("front", 4, 64)


def test_sh_rotation_rotates_the_colour_field():
    rot = quat_to_rotmat(torch.tensor([0.8, 0.2, -0.4, 0.3])).double().numpy()
    coeffs = torch.randn(16, 3, dtype=torch.float64)
    m = torch.as_tensor(sh.sh_rotation(rot, 3))
    d = torch.randn(100, 3, dtype=torch.float64)
    before = sh.eval_sh(coeffs.expand(100, 16, 3), d)
    after = sh.eval_sh((m @ coeffs).expand(100, 16, 3), d @ torch.as_tensor(rot).T)
    np.testing.assert_allclose(after, before, atol=1e-6)


def test_ply_round_trip_and_standard_layout(tmp_path):
    g = random_set(40, degree=2)
    path = str(tmp_path / "scene.ply")
    ply.save(path, g)
    back = ply.load(path)
    for f in ("means", "quats", "scales", "opacities", "colors", "sh_rest"):
        np.testing.assert_allclose(getattr(back, f), getattr(g, f), rtol=1e-5, atol=1e-5)
    plyfile = pytest.importorskip("plyfile")
    v = plyfile.PlyData.read(path)["vertex"]
    names = [p.name for p in v.properties]
    assert names[:9] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    assert names[-8:] == ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    assert len([n for n in names if n.startswith("f_rest_")]) == 24
    assert v["opacity"][0] == pytest.approx(math.log(g.opacities[0] / (1 - g.opacities[0])), abs=1e-4)
    # f_rest is channel-major: f_rest_k for red is band k+1
    assert v["f_rest_1"][3] == pytest.approx(float(g.sh_rest[3, 1, 0]), abs=1e-6)
    assert v["f_rest_8"][3] == pytest.approx(float(g.sh_rest[3, 0, 1]), abs=1e-6)


def test_ply_transform_moves_the_scene_with_the_camera():
    """Rendering a transformed scene from the transformed camera gives the same image."""
    g = random_set(60, degree=1, seed=3)
    rot = quat_to_rotmat(torch.tensor([0.9, 0.1, 0.2, -0.3])).numpy()
    m = ply.similarity(1.0, rotation=rot, translation=(5.0, -2.0, 1.0))
    g2 = ply.transform(g, m)
    view = torch.eye(4)
    view2 = view @ torch.as_tensor(np.linalg.inv(m), dtype=torch.float32)
    K = torch.tensor([[30.0, 0, 16], [0, 30, 16], [0, 0, 1]])

    def render(s, v):
        cols = torch.cat([sh.rgb_to_sh0(s.colors)[:, None], s.sh_rest], 1)
        rgb, _ = rasterize(s.means[None], s.quats[None], s.scales[None], s.opacities[None], cols[None],
                           v[None, None], K[None, None], 32, 32, sh_degree=1)  # fmt: skip
        return rgb[0, 0].numpy()

    a, b = render(g, view), render(g2, view2)
    assert a.max() > 0.2
    np.testing.assert_allclose(a, b, atol=2e-4)
    g3 = ply.transform(g, ply.similarity(2.0))
    np.testing.assert_allclose(g3.scales, 2 * g.scales, rtol=1e-6)
    with pytest.raises(ValueError, match="similarity"):
        ply.transform(g, np.diag([1.0, 2.0, 1.0, 1.0]))


def test_procedural_world_covers_road_markings_obstacles_and_actors():
    bank = bank_of(straight_road(agents=[(20.0, 0.0, 0.0, 8.0)], static_boxes=[(40.0, -3.5, 0.0, 2.0, 2.0)]))
    sc = scenario_dicts(bank)[0]
    g = build_background(sc, WorldConfig(ground_spacing=1.0))
    m, c = g["means"], g["colors"]
    on_road = (np.abs(m[:, 1]) < 5.0) & (m[:, 2] < 0.02) & (np.abs(m[:, 0]) < 150)
    assert on_road.sum() > 500 and np.median(c[on_road].mean(1)) < 0.4  # dark asphalt
    markings = (m[:, 2] > 0.02) & (m[:, 2] < 0.05) & (c.mean(1) > 0.85)
    lines = np.abs(m[markings, 1])  # dashed lane dividers at |y| = 1.75, solid edges at 5.25
    assert np.all(np.minimum(np.abs(lines - 1.75), np.abs(lines - 5.25)) < 0.05)
    assert (np.abs(lines - 1.75) < 0.05).sum() < (np.abs(lines - 5.25) < 0.05).sum()  # dashes leave gaps
    barrier = (c[:, 0] > 0.8) & (c[:, 2] < 0.2)
    assert np.abs(m[barrier, :2].mean(0) - [40.0, -3.5]).max() < 0.3
    tgt = build_background(sc, WorldConfig(target_gaussians=30_000))
    assert len(tgt["means"]) == 30_000
    sb = build_scene_bank(bank, WorldConfig(ground_spacing=2.0, actor_gaussians=64))
    assert sb.actors.means.shape == (1, 1 + 4, 64, 3)
    composed = sb.compose(torch.tensor([0, 0]), torch.zeros(2, 5, 4))
    assert composed.means.shape == (2, sb.gaussians_per_env, 3)


def test_dlpack_round_trip_shares_memory():
    x = jnp.arange(24, dtype=jnp.float32).reshape(2, 3, 4)
    t = bridge.jax_to_torch(x)
    assert t.data_ptr() == bridge.jax_pointer(x) and t.shape == (2, 3, 4)
    img = torch.randint(0, 255, (2, 8, 8, 3), dtype=torch.uint8)
    j = bridge.torch_to_jax(img)
    assert j.dtype == jnp.uint8 and bridge.jax_pointer(j) == img.data_ptr()
    np.testing.assert_array_equal(np.asarray(j), img.numpy())
    strided = img.permute(0, 3, 1, 2)
    np.testing.assert_array_equal(np.asarray(bridge.torch_to_jax(strided)), strided.numpy())
    with pytest.raises(ValueError, match="compact"):
        bridge.torch_to_jax(strided, strict=True)
    with pytest.raises(TypeError, match="jit"):
        jax.jit(lambda a: bridge.jax_to_torch(a).sum())(x)


def test_actor_templates_with_tiny_budgets_terminate_with_exactly_m_gaussians():
    from render_bridge.procedural_world import actor_template

    for m in (4, 8, 16):  # fewer Gaussians than the coarsest even tiling has
        g = actor_template((4.5, 1.9), 0, (0.5, 0.5, 0.5), m, 1.5)
        assert g["means"].shape == (m, 3) and (g["opacities"] > 0).sum() >= 1
