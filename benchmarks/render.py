"""`reconrl bench render`: camera-image throughput of the 3DGS bridge.

Reports (all timings synchronised; ratios taken within one run):
  - sweep: images/s against batch size (envs), resolution and Gaussians per scene;
  - bridge overhead on identical inputs: raw backend call on pre-composed torch tensors
    vs the bridge path (JAX inputs -> DLPack -> same call -> uint8 -> DLPack -> JAX) and
    vs the full path (plus per-env composition of background and posed actors, and sky);
  - camera-observation env-steps/s (jitted simulator step + render) at --env-size with
    --env-gaussians per scene;
  - peak GPU memory (torch allocator and JAX).
On a GPU set XLA_PYTHON_CLIENT_PREALLOCATE=false. On a CPU (reference backend) use tiny
sizes, e.g. --batch-sizes 1,2 --sizes 32 --gaussians 3000 --env-envs 2 --env-size 32.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def add_arguments(p) -> None:
    p.add_argument("--backend", default="auto", help="auto, gsplat or reference (default %(default)s)")
    p.add_argument("--batch-sizes", default="1,16,64,256", help="envs per render call (default %(default)s)")
    p.add_argument("--sizes", default="64,128,256", help="square image sizes in pixels (default %(default)s)")
    p.add_argument("--gaussians", default="50000,200000", help="background Gaussians per scene (default %(default)s)")
    p.add_argument("--rig", default="front", help="camera rig (default %(default)s)")
    p.add_argument("--scenes", type=int, default=4, help="distinct scenes in the bank (default %(default)s)")
    p.add_argument("--repeats", type=int, default=10, help="timed repetitions (default %(default)s)")
    p.add_argument("--max-batch", type=int, default=256, help="chunk size of the renderer (default %(default)s)")
    p.add_argument("--overhead-batch", type=int, default=256, help="envs for the overhead comparison")
    p.add_argument("--env-envs", type=int, default=1024, help="envs of the camera-observation env")
    p.add_argument("--env-size", type=int, default=128, help="image size of the camera-observation env")
    p.add_argument("--env-gaussians", type=int, default=200_000, help="Gaussians per scene of the camera env")
    p.add_argument("--env-steps", type=int, default=20, help="timed camera-env steps")
    p.add_argument("--unpacked", action="store_true", help="gsplat packed=False (more memory, sometimes faster)")


def _sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _time(fn, repeats: int) -> float:
    """Seconds per call after two warm-up calls."""
    for _ in range(2):
        fn()
    _sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync()
    return (time.perf_counter() - t0) / repeats


def _reset_peak():
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _peak() -> dict:
    import jax
    import torch

    out = {}
    if torch.cuda.is_available():
        out["torch_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    stats = getattr(jax.devices()[0], "memory_stats", lambda: None)()
    if stats and "peak_bytes_in_use" in stats:
        out["jax_peak_gib"] = stats["peak_bytes_in_use"] / 2**30
    return out


def sweep(args, bank, scene_banks) -> list[dict]:
    from benchmarks.gpu_render_check import render_inputs
    from render_bridge import dlpack_bridge as bridge
    from render_bridge.cameras import RigConfig
    from render_bridge.renderer import Renderer

    rows = []
    for g, sb in scene_banks.items():
        for size in _ints(args.sizes):
            for b in _ints(args.batch_sizes):
                r = Renderer(
                    sb,
                    RigConfig(args.rig, size, size),
                    backend=args.backend,
                    max_batch=args.max_batch,
                    packed=not args.unpacked,
                )
                inputs = [bridge.jax_to_torch(x) for x in render_inputs(bank, r.rig, b)]
                _reset_peak()
                sec = _time(lambda: r.render_torch(*inputs), args.repeats)
                images = b * r.rig.num_cameras
                rows.append({"gaussians": g, "size": size, "batch": b, "images_per_s": images / sec,
                             "ms_per_call": 1e3 * sec, **_peak()})  # fmt: skip
                print(rows[-1])
    return rows


def overhead(args, bank, sb, size: int) -> dict:
    """Raw backend on pre-composed inputs vs bridge path vs full path, same envs and cameras."""
    import torch

    from benchmarks.gpu_render_check import render_inputs
    from render_bridge import dlpack_bridge as bridge
    from render_bridge.cameras import RigConfig
    from render_bridge.renderer import Renderer

    b = args.overhead_batch
    r = Renderer(
        sb,
        RigConfig(args.rig, size, size),
        backend=args.backend,
        max_batch=max(b, args.max_batch),
        packed=not args.unpacked,
    )
    jin = render_inputs(bank, r.rig, b)
    idx, poses, views = (bridge.jax_to_torch(x) for x in jin)
    g = r.scene_bank.compose(idx.long(), poses)  # the renderer holds the bank on its device

    def raw():
        return r.rasterize(g, views)

    def bridged():  # DLPack in, the same call, uint8, DLPack out
        v = bridge.jax_to_torch(jin[2])
        rgb, _ = r.rasterize(g, v)
        img = (rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8)
        return bridge.torch_to_jax(img).block_until_ready()

    def full():
        return r.render(*jin).block_until_ready()

    t_raw, t_bridge, t_full = (_time(f, args.repeats) for f in (raw, bridged, full))
    return {"overhead_batch": b, "overhead_size": size, "raw_ms": 1e3 * t_raw, "bridge_ms": 1e3 * t_bridge,
            "full_ms": 1e3 * t_full, "bridge_overhead": t_bridge / t_raw - 1.0, "full_overhead": t_full / t_raw - 1.0}  # fmt: skip


def camera_env(args, bank) -> dict:
    import jax
    import jax.numpy as jnp

    from jaxsim.env import DrivingEnv, EnvConfig
    from jaxsim.wrappers import AutoResetWrapper, VmapWrapper
    from render_bridge.camera_env import CameraObsEnv
    from render_bridge.cameras import RigConfig
    from render_bridge.procedural_world import WorldConfig, build_scene_bank
    from render_bridge.renderer import Renderer

    sb = build_scene_bank(bank, WorldConfig(target_gaussians=args.env_gaussians))
    n = args.env_envs
    env = VmapWrapper(AutoResetWrapper(DrivingEnv(EnvConfig(obs="none"))), n)
    renderer = Renderer(
        sb,
        RigConfig(args.rig, args.env_size, args.env_size),
        backend=args.backend,
        max_batch=args.max_batch,
        packed=not getattr(args, "unpacked", False),
    )
    cam = CameraObsEnv(env, renderer)
    params = env.default_params(bank)
    key = jax.random.PRNGKey(0)
    obs, state = cam.reset(key, params)
    actions = jax.random.randint(key, (args.env_steps + 2, n, 2), 20, 41)
    for k in range(2):  # compile + warm up
        obs, state, *_ = cam.step(jax.random.fold_in(key, k), state, actions[k], params)
    obs.block_until_ready()
    _reset_peak()
    t0 = time.perf_counter()
    for k in range(args.env_steps):
        obs, state, *_ = cam.step(jax.random.fold_in(key, 100 + k), state, actions[k + 2], params)
    jnp.asarray(obs).block_until_ready()
    sec = time.perf_counter() - t0
    return {"env_envs": n, "env_size": args.env_size, "env_gaussians_per_env": sb.gaussians_per_env,
            "env_steps_per_s": n * args.env_steps / sec, "env_images_per_s": n * args.env_steps * renderer.rig.num_cameras / sec,
            "env_backend": renderer.backend, **{f"env_{k}": v for k, v in _peak().items()}}  # fmt: skip


def run(args) -> dict:
    import torch

    from benchmarks.gpu_render_check import demo_bank
    from render_bridge import backends
    from render_bridge.procedural_world import WorldConfig, build_scene_bank

    bank = demo_bank(args.scenes)
    scene_banks = {g: build_scene_bank(bank, WorldConfig(target_gaussians=g)) for g in _ints(args.gaussians)}
    out = {"backend": backends.resolve(args.backend), "torch": torch.__version__,
           "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}  # fmt: skip
    out["sweep"] = sweep(args, bank, scene_banks)
    g_max = max(scene_banks)
    out.update(
        overhead(
            args,
            bank,
            scene_banks[g_max],
            max(s for s in _ints(args.sizes) if s <= 128) if min(_ints(args.sizes)) <= 128 else min(_ints(args.sizes)),
        )
    )
    print({k: v for k, v in out.items() if k != "sweep"})
    out.update(camera_env(args, bank))
    print({k: v for k, v in out.items() if k.startswith("env_")})
    return out
