"""Geometry: conversions are exact inverses, Umeyama recovers a known similarity, normalisation is idempotent."""

from __future__ import annotations

import numpy as np
import pytest

from nerf_widgets.poses.geometry import (
    c2w_from_world_to_cam,
    normalize_scene,
    qvec_from_rotation,
    rotation_from_qvec,
    rotation_problem,
    umeyama,
    world_to_cam_from_c2w,
)
from tests.poses.poses_synthetic import ring_cameras


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_quaternion_and_colmap_conversions_round_trip():
    rng = np.random.default_rng(1)
    for _ in range(50):
        rot = _random_rotation(rng)
        np.testing.assert_allclose(rotation_from_qvec(qvec_from_rotation(rot)), rot, atol=1e-12)
        c2w = np.eye(4)
        c2w[:3, :3], c2w[:3, 3] = rot, rng.normal(size=3)
        np.testing.assert_allclose(c2w_from_world_to_cam(*world_to_cam_from_c2w(c2w)), c2w, atol=1e-12)


def test_opengl_camera_looks_down_minus_z_in_colmap_terms():
    c2w = np.eye(4)
    c2w[:3, 3] = [0, 0, 5]  # OpenGL camera at z=5 looking down -Z, towards the origin
    rot, t = world_to_cam_from_c2w(c2w)
    origin_in_cam = rot @ np.zeros(3) + t
    assert origin_in_cam[2] == pytest.approx(5.0)  # COLMAP: in front of the camera means +z


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(2)
    src = rng.normal(size=(20, 3))
    rot, s, t = _random_rotation(rng), 2.5, np.array([1.0, -3.0, 0.5])
    s2, rot2, t2 = umeyama(src, s * src @ rot.T + t)
    assert s2 == pytest.approx(s) and np.allclose(rot2, rot) and np.allclose(t2, t)


def test_rotation_problems_are_named():
    assert rotation_problem(np.eye(3)) is None
    assert "NaN" in rotation_problem(np.full((3, 3), np.nan))
    assert "orthonormal" in rotation_problem(2 * np.eye(3))
    assert "reflection" in rotation_problem(np.diag([1.0, 1.0, -1.0]))


def test_normalisation_levels_centres_scales_and_is_idempotent():
    rng = np.random.default_rng(3)
    cams = np.stack(ring_cameras(12, radius=3.0))
    tilt, shift = _random_rotation(rng), np.array([5.0, -1.0, 2.0])
    moved = cams.copy()
    moved[:, :3, :3] = tilt @ cams[:, :3, :3]
    moved[:, :3, 3] = 7.0 * cams[:, :3, 3] @ tilt.T + shift
    norm = normalize_scene(moved)
    out = norm.apply_c2w(moved)
    assert norm.centring == "focus"
    assert np.linalg.norm(out[:, :3, 3], axis=1).max() == pytest.approx(4.0)
    up = out[:, :3, 1].mean(0)
    assert up[2] / np.linalg.norm(up) == pytest.approx(1.0)
    np.testing.assert_allclose(norm.apply_points(moved[:, :3, 3]), out[:, :3, 3], atol=1e-9)
    again = normalize_scene(out)
    np.testing.assert_allclose(again.apply_c2w(out), out, atol=1e-9)
