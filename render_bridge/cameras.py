"""Camera rigs and camera poses in JAX (no torch here): intrinsics, extrinsics, view matrices.

Frames: world (jaxsim, z up, yaw counter-clockwise from +x); ego (x forward, y left,
z up, origin at the ego pose, i.e. the rear axle as in nuScenes); camera (OpenCV:
x right, y down, z forward), which is what gsplat's `viewmats` (world -> camera) and
`Ks` expect. A camera's mount is its position in the ego frame and yaw / pitch / roll
in degrees (yaw left-positive, pitch down-positive, roll clockwise-positive).

`view_matrices(ego, rig)` is written for one env; `jax.vmap` it over envs.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

from jaxsim.config_utils import ConfigError, check_choice, check_range

RIGS = ("front", "nuscenes6", "chase")


@dataclasses.dataclass(frozen=True)
class CameraSpec:
    """One pinhole camera. fov_x_deg sets fx = fy for the rig's resolution unless fx > 0;
    cx, cy default (<0) to the image centre. Mount in the ego frame (m, degrees)."""

    name: str = "CAM_FRONT"
    fov_x_deg: float = 90.0
    x: float = 1.5
    y: float = 0.0
    z: float = 1.6
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    roll_deg: float = 0.0
    fx: float = 0.0
    fy: float = 0.0
    cx: float = -1.0
    cy: float = -1.0

    def __post_init__(self):
        check_range(f"{self.name}.fov_x_deg", self.fov_x_deg, 1.0, 179.0)
        check_range(f"{self.name}.pitch_deg", self.pitch_deg, -90.0, 90.0)


# nuScenes' six cameras (calibrated_sensor of scene-0061, rounded): 1600x900 images,
# fx ~1266 (fov 64.5 deg) for five cameras and ~809 (fov 89.4 deg) for CAM_BACK.
NUSCENES6 = (
    CameraSpec("CAM_FRONT", 64.5, 1.70, 0.02, 1.51, 0.0),
    CameraSpec("CAM_FRONT_RIGHT", 64.5, 1.55, -0.49, 1.50, -55.0),
    CameraSpec("CAM_FRONT_LEFT", 64.5, 1.52, 0.49, 1.51, 55.0),
    CameraSpec("CAM_BACK", 89.4, 0.03, 0.02, 1.57, 180.0),
    CameraSpec("CAM_BACK_LEFT", 64.5, 1.04, 0.48, 1.56, 110.0),
    CameraSpec("CAM_BACK_RIGHT", 64.5, 1.04, -0.48, 1.56, -110.0),
)
PRESETS = {
    "front": (CameraSpec("CAM_FRONT", 90.0, 1.5, 0.0, 1.6, 0.0, 3.0),),
    "nuscenes6": NUSCENES6,
    "chase": (CameraSpec("CHASE", 70.0, -9.0, 0.0, 4.5, 0.0, 15.0),),
}


@dataclasses.dataclass(frozen=True)
class RigConfig:
    """Static camera rig: a preset name (front, nuscenes6, chase) or explicit `cameras`.

    width, height: pixels of every camera; near, far: clip distances along z (m).
    """

    rig: str = "front"
    width: int = 128
    height: int = 128
    near: float = 0.1
    far: float = 500.0
    cameras: tuple = ()

    def __post_init__(self):
        if not self.cameras:
            check_choice("rig", self.rig, RIGS)
        check_range("width", self.width, 8, 8192)
        check_range("height", self.height, 8, 8192)
        check_range("near", self.near, 1e-3, 100.0)
        check_range("far", self.far, self.near + 1e-3, 1e7)
        for cam in self.cameras:
            if not isinstance(cam, CameraSpec):
                raise ConfigError(f"'cameras' must hold CameraSpec entries, got {type(cam).__name__}")

    @property
    def specs(self) -> tuple:
        return self.cameras or PRESETS[self.rig]

    @property
    def num_cameras(self) -> int:
        return len(self.specs)


def intrinsics(rig: RigConfig) -> np.ndarray:
    """(C, 3, 3) float32 pinhole matrices K for the rig's resolution."""
    out = []
    for cam in rig.specs:
        fx = cam.fx if cam.fx > 0 else 0.5 * rig.width / math.tan(math.radians(cam.fov_x_deg) / 2)
        fy = cam.fy if cam.fy > 0 else fx
        cx = cam.cx if cam.cx >= 0 else 0.5 * rig.width
        cy = cam.cy if cam.cy >= 0 else 0.5 * rig.height
        out.append([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return np.asarray(out, np.float32)


def _rot_z(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _rot_y(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_x(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


# columns: the OpenCV camera axes (x right, y down, z forward) in the ego frame
CV_TO_EGO = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def camera_to_ego(rig: RigConfig) -> np.ndarray:
    """(C, 4, 4) float32 camera -> ego transforms from the mounts."""
    out = []
    for cam in rig.specs:
        rot = (
            _rot_z(math.radians(cam.yaw_deg)) @ _rot_y(math.radians(cam.pitch_deg)) @ _rot_x(math.radians(cam.roll_deg))
        )
        m = np.eye(4)
        m[:3, :3] = rot @ CV_TO_EGO
        m[:3, 3] = (cam.x, cam.y, cam.z)
        out.append(m)
    return np.asarray(out, np.float32)


def ego_to_world(ego: jnp.ndarray) -> jnp.ndarray:
    """(4, 4) transform of an ego state [x, y, yaw, speed] (ground plane z = 0)."""
    c, s = jnp.cos(ego[2]), jnp.sin(ego[2])
    z, o = jnp.zeros_like(c), jnp.ones_like(c)
    return jnp.array([[c, -s, z, ego[0]], [s, c, z, ego[1]], [z, z, o, z], [z, z, z, o]], jnp.float32)


def rigid_inverse(m: jnp.ndarray) -> jnp.ndarray:
    """Inverse of rigid transforms (..., 4, 4) without a general matrix inverse."""
    rt = jnp.swapaxes(m[..., :3, :3], -1, -2)
    t = -jnp.einsum("...ij,...j->...i", rt, m[..., :3, 3])
    top = jnp.concatenate([rt, t[..., None]], axis=-1)
    bottom = jnp.broadcast_to(jnp.array([0.0, 0.0, 0.0, 1.0], m.dtype), m.shape[:-2] + (1, 4))
    return jnp.concatenate([top, bottom], axis=-2)


def camera_to_world(ego: jnp.ndarray, rig: RigConfig) -> jnp.ndarray:
    """(C, 4, 4) camera -> world poses for one ego state (4,)."""
    return ego_to_world(ego)[None] @ jnp.asarray(camera_to_ego(rig))


def view_matrices(ego: jnp.ndarray, rig: RigConfig) -> jnp.ndarray:
    """(C, 4, 4) world -> camera matrices (gsplat `viewmats`) for one ego state (4,)."""
    return rigid_inverse(camera_to_world(ego, rig))


def actor_poses(ego: jnp.ndarray, agents: jnp.ndarray, valid: jnp.ndarray, draw_ego) -> jnp.ndarray:
    """(1 + A, 4) [x, y, yaw, visible] for the scene's actor slots (slot 0 = ego).

    ego (4,), agents (A, 4) [x, y, yaw, speed], valid (A,) bool, draw_ego bool.
    """
    first = jnp.concatenate([ego[:3], jnp.asarray(draw_ego, jnp.float32)[None]])
    rest = jnp.concatenate([agents[:, :3], valid.astype(jnp.float32)[:, None]], axis=-1)
    return jnp.concatenate([first[None], rest], axis=0).astype(jnp.float32)
