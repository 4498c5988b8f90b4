"""`ReconScene`: a reconstructed drive. Street-Gaussians layout: one set of Gaussians
where each carries an actor id (-1 = static background in the world frame, k >= 1 =
actor slot k in its box frame, x forward / y left / z up, origin on the ground under
the box centre), posed per frame from the actor tracks; a learnable cube-map sky.

    scene.render(ego_poses (V, 3), actor_poses (V, 1 + A, 4), rig) -> (V, C, H, W, 3) float
    scene.save("scene.pt"); ReconScene.load("scene.pt")
    scene.export_ply("dir")          # background.ply (world) + actor_KK.ply (box frames)
    bank = scene.to_scene_bank()     # for `Renderer` / the camera env; sky: scene.sky_map()

Raw parameters (what the optimiser sees): means (N, 3), scales (N, 3) log m, quats
(N, 4), opacities (N,) logits, colors (N, 3) logits, actor (N,) float slot ids.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from render_bridge import cameras, ply
from render_bridge.recon import raster
from render_bridge.recon.geometry import pose_by_id, view_matrices
from render_bridge.recon.sky_nvdiffrast import CubeSky
from render_bridge.scene import GaussianSet, SceneBank, empty, stack
from render_bridge.sky import SkyMap

PARAMS = ("means", "scales", "quats", "opacities", "colors", "actor")


def activated(params) -> dict:
    """Renderable tensors from raw parameters (see module docstring)."""
    return {"means": params["means"], "quats": params["quats"] / params["quats"].norm(dim=-1, keepdim=True).clamp_min(1e-12),
            "scales": torch.exp(params["scales"]), "opacities": torch.sigmoid(params["opacities"]),
            "colors": torch.sigmoid(params["colors"]), "actor": params["actor"]}  # fmt: skip


def render_frame(params, sky: CubeSky | None, ego, poses, Ks, cam_to_ego, width: int, height: int,
                 near: float = 0.1, far: float = 500.0, backend: str = "auto", absgrad: bool = False):  # fmt: skip
    """One frame (differentiable): ego (3,), poses (1 + A, 4), Ks (C, 3, 3), cam_to_ego
    (C, 4, 4) -> image (C, H, W, 3), alpha (C, H, W, 1), rasterizer info."""
    g = activated(params)
    means, quats, opac = pose_by_id(g["means"], g["quats"], g["opacities"], g["actor"], poses)
    views = view_matrices(ego[None], cam_to_ego)[0]
    rgb, alpha, info = raster.rasterize(means, quats, g["scales"], opac, g["colors"], views, Ks, width, height,
                                        near, far, backend, absgrad)  # fmt: skip
    if sky is not None:
        rgb = rgb + (1.0 - alpha) * sky.background(views, Ks, width, height)
    return rgb, alpha, info


class ReconScene:
    """A fitted scene (module docstring). calib: Ks (C, 3, 3), cam_to_ego (C, 4, 4), names,
    width, height of the capture; timeline: the capture's ego_poses (F, 3), actor_poses
    (F, 1 + A, 4), timestamps (F,), val_frames (held-out frame indices); meta: free JSON."""

    def __init__(self, params: dict, sky: CubeSky, calib: dict, timeline: dict, meta: dict | None = None):
        self.params = {k: params[k] for k in PARAMS}
        self.sky, self.calib, self.timeline, self.meta = sky, calib, timeline, dict(meta or {})

    @property
    def num_gaussians(self) -> int:
        return int(self.params["means"].shape[0])

    @property
    def num_actor_slots(self) -> int:
        return int(self.timeline["actor_poses"].shape[1])

    @property
    def device(self) -> torch.device:
        return self.params["means"].device

    def to(self, device) -> "ReconScene":
        self.params = {k: v.detach().to(device) for k, v in self.params.items()}
        self.sky = self.sky.to(device)
        return self

    def _rig_arrays(self, rig: cameras.RigConfig | None):
        if rig is None:
            c = self.calib
            return (torch.as_tensor(c["Ks"], dtype=torch.float32, device=self.device),
                    torch.as_tensor(c["cam_to_ego"], dtype=torch.float32, device=self.device),
                    int(c["width"]), int(c["height"]), 0.1, 500.0)  # fmt: skip
        return (torch.as_tensor(cameras.intrinsics(rig), device=self.device),
                torch.as_tensor(cameras.camera_to_ego(rig), device=self.device), rig.width, rig.height, rig.near, rig.far)  # fmt: skip

    @torch.no_grad()
    def render(
        self, ego_poses, actor_poses, rig: cameras.RigConfig | None = None, backend: str = "auto"
    ) -> torch.Tensor:
        """Images (V, C, H, W, 3) float32 in [0, 1] on the scene's device at ego poses (V, 3)
        with actors at actor_poses (V, 1 + A, 4); rig None = the capture's calibration."""
        ego = torch.as_tensor(
            np.asarray(ego_poses) if not torch.is_tensor(ego_poses) else ego_poses,
            dtype=torch.float32,
            device=self.device,
        )
        poses = torch.as_tensor(
            np.asarray(actor_poses) if not torch.is_tensor(actor_poses) else actor_poses,
            dtype=torch.float32,
            device=self.device,
        )
        if ego.ndim != 2 or ego.shape[1] != 3 or poses.shape != (ego.shape[0], self.num_actor_slots, 4):
            raise ValueError(f"render needs ego_poses (V, 3) and actor_poses (V, {self.num_actor_slots}, 4), "
                             f"got {tuple(ego.shape)} and {tuple(poses.shape)}")  # fmt: skip
        Ks, c2e, w, h, near, far = self._rig_arrays(rig)
        out = torch.empty((ego.shape[0], Ks.shape[0], h, w, 3), device=self.device)
        for v in range(ego.shape[0]):
            rgb, _, _ = render_frame(self.params, self.sky, ego[v], poses[v], Ks, c2e, w, h, near, far, backend)
            out[v] = rgb.clamp(0.0, 1.0)
        return out

    # ------------------------------------------------------------------ export
    def gaussian_set(self, slot: int = -1) -> GaussianSet:
        """Activated Gaussians of the background (slot -1, world frame) or of actor `slot` (box frame)."""
        g = activated({k: v.detach() for k, v in self.params.items()})
        keep = g["actor"].long() == slot
        return GaussianSet(
            g["means"][keep], g["quats"][keep], g["scales"][keep], g["opacities"][keep], g["colors"][keep]
        )

    def to_scene_bank(self, device=None) -> SceneBank:
        """A one-scene `SceneBank`: the background plus one template per actor slot (1 + A)."""
        return scene_bank_of([self], device)

    def sky_map(self, device=None) -> SkyMap:
        """The learned sky as the renderer's equirectangular `SkyMap`."""
        return SkyMap(self.sky.equirect().cpu().numpy(), device=device)

    def export_ply(self, directory: str) -> list[str]:
        """background.ply (world frame) and actor_KK.ply per non-empty slot (box frame), plus
        scene.json (calibration, timeline, meta) so `from_ply` rebuilds the scene."""
        os.makedirs(directory, exist_ok=True)
        paths = [os.path.join(directory, "background.ply")]
        ply.save(paths[0], self.gaussian_set(-1))
        for slot in range(self.num_actor_slots):
            g = self.gaussian_set(slot)
            if g.num:
                paths.append(os.path.join(directory, f"actor_{slot:02d}.ply"))
                ply.save(paths[-1], g)
        doc = {"calib": _jsonable(self.calib), "timeline": _jsonable(self.timeline), "meta": self.meta}
        with open(os.path.join(directory, "scene.json"), "w") as f:
            json.dump(doc, f)
        torch.save({"logits": self.sky.logits.detach().cpu()}, os.path.join(directory, "sky.pt"))
        return paths

    @staticmethod
    def from_ply(directory: str, device=None) -> "ReconScene":
        """Inverse of `export_ply`."""
        with open(os.path.join(directory, "scene.json")) as f:
            doc = json.load(f)
        timeline = {k: np.asarray(v) for k, v in doc["timeline"].items()}
        parts = [(-1, ply.load(os.path.join(directory, "background.ply")))]
        for slot in range(timeline["actor_poses"].shape[1]):
            p = os.path.join(directory, f"actor_{slot:02d}.ply")
            if os.path.isfile(p):
                parts.append((slot, ply.load(p)))
        params = raw_from_sets(parts, device)
        logits = torch.load(os.path.join(directory, "sky.pt"), weights_only=True)["logits"]
        sky = CubeSky(logits.shape[1], device=device)
        sky.logits.data.copy_(logits)
        calib = {k: (np.asarray(v, np.float32) if k in ("Ks", "cam_to_ego") else v) for k, v in doc["calib"].items()}
        return ReconScene(params, sky, calib, timeline, doc["meta"])

    # ------------------------------------------------------------------ save / load
    def save(self, path: str) -> None:
        """One torch file of tensors and JSON-able metadata (loads with weights_only=True)."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        torch.save({"params": {k: v.detach().cpu() for k, v in self.params.items()}, "sky": self.sky.logits.detach().cpu(),
                    "sky_backend": self.sky.backend, "calib": _jsonable(self.calib), "timeline": _jsonable(self.timeline),
                    "meta": self.meta}, path)  # fmt: skip

    @staticmethod
    def load(path: str, device=None) -> "ReconScene":
        d = torch.load(path, map_location="cpu", weights_only=True)
        missing = [k for k in ("params", "sky", "calib", "timeline") if k not in d]
        if missing:
            raise ValueError(f"{path}: not a ReconScene file (missing {missing})")
        absent = [k for k in PARAMS if k not in d["params"]]
        if absent:
            raise ValueError(f"{path}: field 'params' lacks {absent}")
        sky = CubeSky(d["sky"].shape[1], backend=d.get("sky_backend", "auto"))
        sky.logits.data.copy_(d["sky"])
        calib = {k: (np.asarray(v, np.float32) if k in ("Ks", "cam_to_ego") else v) for k, v in d["calib"].items()}
        timeline = {k: np.asarray(v) for k, v in d["timeline"].items()}
        return ReconScene(d["params"], sky, calib, timeline, d["meta"]).to(device or "cpu")


def raw_from_sets(parts: list[tuple[int, GaussianSet]], device=None) -> dict:
    """Raw parameters from activated (slot, GaussianSet) parts (slot -1 = background)."""
    eps = 1e-6
    cat = lambda f: torch.cat([f(g) for _, g in parts]).to(device)  # noqa: E731
    return {
        "means": cat(lambda g: g.means), "quats": cat(lambda g: g.quats),
        "scales": cat(lambda g: torch.log(g.scales.clamp_min(1e-9))),
        "opacities": cat(lambda g: torch.logit(g.opacities.clamp(eps, 1 - eps))),
        "colors": cat(lambda g: torch.logit(g.colors.clamp(eps, 1 - eps))),
        "actor": torch.cat([torch.full((g.num,), float(s)) for s, g in parts]).to(device),
    }  # fmt: skip


def scene_bank_of(scenes: list[ReconScene], device=None) -> SceneBank:
    """A `SceneBank` with one scene per reconstruction (same number of actor slots in all);
    Gaussians are padded with zero-opacity ones to common counts."""
    slots = {s.num_actor_slots for s in scenes}
    if len(slots) != 1:
        raise ValueError(f"scenes have different actor slot counts {sorted(slots)}")
    bgs, actors = [], []
    for s in scenes:
        bgs.append(s.gaussian_set(-1).to("cpu"))
        tmpl = [s.gaussian_set(k).to("cpu") for k in range(s.num_actor_slots)]
        actors.append(stack([t if t.num else empty(1) for t in tmpl]))
    m = max(a.num for a in actors)
    actors = [stack([a.map(lambda t, i=i: t[i]) for i in range(a.means.shape[0])] + [empty(m)]).map(lambda t: t[:-1])
              for a in actors]  # fmt: skip
    return SceneBank(stack(bgs), GaussianSet(*(torch.stack([getattr(a, f) for a in actors]) for f in
                                               ("means", "quats", "scales", "opacities", "colors")))).to(device)  # fmt: skip


def _jsonable(d: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in d.items()}
