"""Geometry against shapely (independent reference) on random inputs."""

import jax.numpy as jnp
import numpy as np
from shapely.geometry import LineString, Point, Polygon

from jaxsim.geometry import box_clearance, box_corners, box_overlap, closest_on_polyline, sdf_lookup, to_local, to_world


def random_boxes(rng, n):
    return np.stack(
        [
            rng.uniform(-4, 4, n),
            rng.uniform(-4, 4, n),
            rng.uniform(-np.pi, np.pi, n),
            rng.uniform(0.5, 6, n),
            rng.uniform(0.3, 3, n),
        ],
        -1,
    ).astype(np.float32)


def test_box_overlap_matches_shapely_on_random_boxes():
    rng = np.random.default_rng(0)
    a, b = random_boxes(rng, 3000), random_boxes(rng, 3000)
    got = np.asarray(box_overlap(jnp.asarray(a), jnp.asarray(b)))
    ca, cb = np.asarray(box_corners(jnp.asarray(a))), np.asarray(box_corners(jnp.asarray(b)))
    dist = np.array([Polygon(p).distance(Polygon(q)) for p, q in zip(ca, cb)])
    inter = np.array([Polygon(p).intersection(Polygon(q)).area for p, q in zip(ca, cb)])
    decided = (dist > 1e-4) | (inter > 1e-4)  # skip razor-thin touching cases
    assert decided.mean() > 0.99
    np.testing.assert_array_equal(got[decided], dist[decided] == 0)
    assert 0.2 < got.mean() < 0.8  # both outcomes well represented


def test_box_clearance_bounds_true_distance():
    rng = np.random.default_rng(1)
    a, b = random_boxes(rng, 1000), random_boxes(rng, 1000)
    c = np.asarray(box_clearance(jnp.asarray(a), jnp.asarray(b)))
    ca, cb = np.asarray(box_corners(jnp.asarray(a))), np.asarray(box_corners(jnp.asarray(b)))
    dist = np.array([Polygon(p).distance(Polygon(q)) for p, q in zip(ca, cb)])
    assert np.all(c <= dist + 1e-4)  # a lower bound on the gap
    np.testing.assert_array_equal(c > 0, dist > 0)


def test_box_corners_match_shapely_area_and_centroid():
    rng = np.random.default_rng(2)
    boxes = random_boxes(rng, 50)
    for box, corners in zip(boxes, np.asarray(box_corners(jnp.asarray(boxes)))):
        poly = Polygon(corners)
        assert poly.is_valid and np.isclose(poly.area, box[3] * box[4], rtol=1e-4)
        np.testing.assert_allclose([poly.centroid.x, poly.centroid.y], box[:2], atol=1e-4)


def test_frames_round_trip():
    rng = np.random.default_rng(3)
    pts = jnp.asarray(rng.normal(size=(100, 2)) * 10, jnp.float32)
    pose = jnp.asarray([3.0, -2.0, 2.5])
    np.testing.assert_allclose(to_world(to_local(pts, pose), pose), pts, atol=1e-4)
    ahead = to_local(jnp.array([3.0 + np.cos(2.5), -2.0 + np.sin(2.5)]), pose)
    np.testing.assert_allclose(ahead, [1.0, 0.0], atol=1e-5)


def test_sdf_lookup_is_exact_on_linear_fields_and_indexes_banks():
    h, w, res = 20, 30, 0.5
    origin = jnp.array([-3.0, 4.0])
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    field = (2.0 * (origin[0] + xs * res) - 1.0 * (origin[1] + ys * res) + 0.5).astype(np.float32)
    rng = np.random.default_rng(4)
    pts = np.stack([rng.uniform(-3, -3 + (w - 1) * res, 200), rng.uniform(4, 4 + (h - 1) * res, 200)], -1)
    got = sdf_lookup(jnp.asarray(field), origin, res, jnp.asarray(pts, jnp.float32))
    np.testing.assert_allclose(got, 2 * pts[:, 0] - pts[:, 1] + 0.5, atol=1e-4)
    bank = jnp.stack([jnp.asarray(field) * 0, jnp.asarray(field)])
    np.testing.assert_allclose(sdf_lookup(bank, origin, res, jnp.asarray(pts, jnp.float32), index=1), got, atol=1e-5)
    # off the grid the value keeps growing: leaving the map reads as off-road
    far = sdf_lookup(jnp.zeros((h, w)), origin, res, jnp.array([-13.0, 4.0]))
    assert float(far) == np.float32(10.0)


def test_closest_on_polyline_matches_shapely():
    rng = np.random.default_rng(5)
    line = np.cumsum(rng.normal(size=(12, 2)) * 3, 0).astype(np.float32)
    for q in rng.normal(size=(50, 2)) * 10:
        d, i, f = closest_on_polyline(jnp.asarray(line), jnp.asarray(q, jnp.float32), jnp.int32(9))
        ref = LineString(line[:9]).distance(Point(q))
        assert abs(float(d) - ref) < 1e-3
        assert int(i) <= 7 and 0.0 <= float(f) <= 1.0
