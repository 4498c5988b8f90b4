"""Reconstruction of logged drives (3DGS), measured against the procedural ground truth.

The procedural world (`render_bridge.procedural_world`) is the "real world": it gives the
true image at any pose, so novel-view quality is measured exactly. Stable API:

    from render_bridge.recon.capture import capture_log, LoggedCapture
    cap = capture_log(bank, scenario_idx, rig, world_cfg=WorldConfig(), stride=1, device=None)
        # images (F, C, H, W, 3) uint8, ego_poses (F, 3) [x, y, yaw], actor_poses (F, 1 + A, 4)
        # [x, y, yaw, visible], timestamps (F,), Ks (C, 3, 3), cam_to_ego (C, 4, 4), cap.rig,
        # sparse LiDAR points (P, 3) + colours + frame index
    cap.save(dir); cap = LoggedCapture.load(dir)          # documented layout, validated

    from render_bridge.recon.groundtruth import render_groundtruth
    imgs = render_groundtruth(bank, scenario_idx, ego_poses (V, 3), actor_poses (V, 1 + A, 4), rig)
        # float32 torch (V, C, H, W, 3) in [0, 1]: the procedural world at any pose

    from render_bridge.recon.fit import FitConfig, fit, FitDiverged
    scene = fit(cap, FitConfig(), init=None, extra_views=None, ckpt_dir=None, progress=True)
        # extra_views: [(ego_poses (V, 3), actor_poses (V, 1 + A, 4), images (V, C, H, W, 3) float, weight)]
    scene.render(ego_poses, actor_poses, rig=None) -> float32 torch (V, C, H, W, 3)
    scene.save(path); ReconScene.load(path); scene.export_ply(dir); ReconScene.from_ply(dir)
    scene.to_scene_bank(); scene.sky_map()              # run the camera env on the reconstruction

    from render_bridge.recon.evaluate import shifted_poses, novel_view_table
    shifted_poses(ego_poses (V, 3), offset_m)              # lateral shift, + = ego's left
    novel_view_table(scene, bank, scenario_idx, offsets=(0, 1, 2, 3), cousins=True) -> dict

    from render_bridge.recon.metrics import psnr, ssim     # floats; psnr(x, x) = inf

Modules: geometry (pose algebra), groundtruth, capture (+ capture_io: on-disk layout),
init (Gaussians from LiDAR), raster (gsplat / reference with autograd), sky_nvdiffrast
(learnable cube-map sky), model (ReconScene, export), fit, metrics, evaluate.
No JAX runs inside this package except the optional CTG cousin sampling in evaluate.
"""

from render_bridge.recon.model import ReconScene

__all__ = ["ReconScene"]
