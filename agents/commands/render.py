"""`reconrl render`: a PNG (and optionally a GIF/MP4) of what the cameras see.

    reconrl render --out frame.png [--video ep.gif] [--backend auto|reference|gsplat]
                   [--rig front|nuscenes6|chase] [--width W --height H] [--scenario I]
                   [--ply scene.ply [--ply-transform ...]] [--bank FILE | --num N --split S --seed K]

The ego follows its expert log (controls recovered by the inverse bicycle model) in the
closed-loop env; frames come from the camera-observation env, several cameras tiled.
On a CPU the reference splatter draws about a 256x144 frame a second.
"""

from __future__ import annotations

import numpy as np

DEFAULT_SIZES = {"front": (256, 144), "nuscenes6": (200, 112), "chase": (256, 144)}


def add_parser(sub) -> None:
    from agents.scenario_source import add_bank_arguments

    p = sub.add_parser("render", help="render camera images (PNG) and an episode video through the 3DGS bridge")
    p.add_argument("--out", default="frame.png", help="PNG of the first frame (default %(default)s)")
    p.add_argument("--video", default=None, help="episode video from the cameras (.gif, or .mp4 with imageio-ffmpeg)")
    p.add_argument("--backend", default="auto", help="auto, reference or gsplat (default %(default)s)")
    p.add_argument("--rig", default="front", help="front, nuscenes6 or chase (default %(default)s)")
    p.add_argument("--width", type=int, default=0, help="image width in pixels (default: per rig)")
    p.add_argument("--height", type=int, default=0, help="image height in pixels (default: per rig)")
    p.add_argument("--scenario", type=int, default=0, help="scenario index in the bank (default %(default)s)")
    p.add_argument("--steps", type=int, default=0, help="video frames (default: the whole log)")
    p.add_argument("--fps", type=float, default=10.0, help="video frame rate (default %(default)s)")
    p.add_argument("--gaussians", type=int, default=0, help="background Gaussians per scene (default: natural density)")
    p.add_argument("--draw-ego", action="store_true", help="draw the ego car (on by default for the chase rig)")
    p.add_argument("--ply", default=None, help="3DGS PLY replacing the procedural background of --scenario")
    p.add_argument("--ply-transform", default=None, type=str,
                   help="PLY -> scenario frame: 'scale,yaw_deg,tx,ty,tz' or 16 comma-separated numbers (row-major 4x4)")  # fmt: skip
    p.add_argument("--torch-threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    add_bank_arguments(p, split="heldout", num=4)
    p.set_defaults(run=run)


def parse_transform(text: str | None):
    if not text:
        return None
    vals = [float(v) for v in text.split(",")]
    if len(vals) == 16:
        return np.asarray(vals).reshape(4, 4)
    if len(vals) == 5:
        from render_bridge.ply import similarity

        return similarity(vals[0], yaw=np.radians(vals[1]), translation=vals[2:])
    raise ValueError(f"--ply-transform needs 5 numbers (scale,yaw_deg,tx,ty,tz) or 16 (4x4), got {len(vals)}")


def tile(images: np.ndarray) -> np.ndarray:
    """(C, H, W, 3) -> one image, up to three cameras per row."""
    c, h, w, _ = images.shape
    cols = min(c, 3)
    rows = -(-c // cols)
    out = np.zeros((rows * h, cols * w, 3), np.uint8)
    for k in range(c):
        out[(k // cols) * h : (k // cols + 1) * h, (k % cols) * w : (k % cols + 1) * w] = images[k]
    return out


def run(args) -> int:
    import jax
    import jax.numpy as jnp
    import torch
    from PIL import Image

    from agents.scenario_source import bank_from_args
    from jaxsim.env import DrivingEnv, EnvConfig
    from jaxsim.io_utils import check_output_file
    from jaxsim.kinematics import expert_controls
    from jaxsim.wrappers import VmapWrapper
    from render_bridge import ply as ply_lib
    from render_bridge.camera_env import CameraObsEnv
    from render_bridge.cameras import RigConfig
    from render_bridge.procedural_world import WorldConfig, build_scene_bank
    from render_bridge.renderer import Renderer

    check_output_file(args.out, "--out")  # before loading and rendering, not after
    if args.video:
        check_output_file(args.video, "--video")
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    bank = bank_from_args(args)
    n = bank.ego_traj.shape[0]
    if not 0 <= args.scenario < n:
        raise ValueError(f"--scenario must be in [0, {n - 1}], got {args.scenario}")
    w0, h0 = DEFAULT_SIZES.get(args.rig, (256, 144))
    rig = RigConfig(args.rig, args.width or w0, args.height or h0)
    backgrounds = None
    if args.ply:
        g = ply_lib.load(args.ply)
        m = parse_transform(args.ply_transform)
        backgrounds = {args.scenario: ply_lib.transform(g, m) if m is not None else g}
    sub = bank[args.scenario : args.scenario + 1]  # only this scene gets Gaussians
    scene_bank = build_scene_bank(sub, WorldConfig(target_gaussians=args.gaussians),
                                  backgrounds={0: backgrounds[args.scenario]} if backgrounds else None)  # fmt: skip
    renderer = Renderer(scene_bank, rig, backend=args.backend)
    env = DrivingEnv(EnvConfig(action_space="continuous", obs="none"))
    params = env.default_params(sub)
    cam_env = CameraObsEnv(VmapWrapper(env, 1), renderer, draw_ego=args.draw_ego or args.rig == "chase")
    key = jax.random.PRNGKey(args.seed)
    obs, state = cam_env.reset_to(key, params, jnp.zeros((1,), jnp.int32))
    frames = [tile(np.asarray(obs[0]))]
    Image.fromarray(frames[0]).save(args.out)
    print(f"wrote {args.out} ({rig.rig}, {rig.width}x{rig.height}, backend {renderer.backend}, "
          f"{scene_bank.gaussians_per_env} Gaussians per env)")  # fmt: skip
    if not args.video:
        return 0
    controls = np.asarray(expert_controls(sub.ego_traj[0], sub.dt[0], params.dynamics))
    steps = int(np.sum(np.asarray(sub.ego_valid[0]))) - 1
    steps = min(steps, args.steps) if args.steps else steps
    for t in range(steps):
        key, k = jax.random.split(key)
        obs, state, _, term, trunc, _ = cam_env.step(k, state, jnp.asarray(controls[t])[None], params)
        frames.append(tile(np.asarray(obs[0])))
        if bool(term[0] | trunc[0]):
            break
    import imageio.v2 as imageio

    if args.video.endswith(".gif"):
        imageio.mimsave(args.video, frames, duration=1000.0 / args.fps, loop=0)
    else:
        imageio.mimsave(args.video, frames, fps=args.fps)
    print(f"wrote {args.video} ({len(frames)} frames)")
    return 0
