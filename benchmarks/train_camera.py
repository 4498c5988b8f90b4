"""`reconrl bench train --obs camera`: PPO from 3DGS pixels, env-steps/s split into render,
simulate and learn time, and peak GPU memory.

The floor is the renderer alone (`reconrl bench render`: images/s at the same size and
Gaussian budget): PPO from pixels cannot step faster than its observations are drawn.
"""

from __future__ import annotations


def add_camera_arguments(p) -> None:
    g = p.add_argument_group("camera (--obs camera)")
    g.add_argument("--backend", default="auto", choices=("auto", "gsplat", "reference"))
    g.add_argument("--rig", default="front", choices=("front", "nuscenes6"))
    g.add_argument("--width", type=int, default=128)
    g.add_argument("--height", type=int, default=128)
    g.add_argument("--gaussians", type=int, default=200_000, help="background Gaussians per scene")
    g.add_argument(
        "--camera-scenes", type=int, default=16, help="scenes rendered (each holds its Gaussians on the GPU)"
    )
    g.add_argument("--channels", default="16,32,32", help="IMPALA stages")
    g.add_argument("--perception-coef", type=float, default=0.1)
    g.add_argument("--compute-dtype", default="float32", choices=("float32", "bfloat16"), help="camera encoder")
    g.add_argument("--frames", type=int, default=1, help="stacked frames the policy sees (render.frames)")


def run_camera(args) -> dict:
    import time

    import jax
    import numpy as np
    import torch

    from agents import adversaries
    from agents.camera_obs import Camera, obs_shape
    from agents.camera_ppo import make_camera_ppo
    from agents.networks import init_params, make_network
    from agents.train_config import DAA_BEHAVIOURS, load_config
    from jaxsim.env import DrivingEnv
    from jaxsim.procedural import generate_bank

    cfg = load_config(None, [
        "env.obs=camera", "network.encoder=impala", f"network.channels=[{args.channels}]",
        f"network.perception_coef={args.perception_coef}", f"network.compute_dtype={args.compute_dtype}",
        f"ppo.num_envs={args.num_envs}", f"ppo.num_steps={args.num_steps}", f"ppo.updates_per_chunk={args.updates}",
        f"ppo.epochs={args.epochs}", f"ppo.num_minibatches={args.minibatches}", f"network.hidden={args.hidden}",
        f"env.substeps={args.substeps}", f"seeds={args.seeds}", f"render.backend={args.backend}",
        f"render.rig={args.rig}", f"render.width={args.width}", f"render.height={args.height}",
        f"render.gaussians={args.gaussians}", f"render.frames={args.frames}",
    ])  # fmt: skip
    env = DrivingEnv(cfg.env)
    bank = generate_bank(args.camera_scenes, split="train", seed=0)
    params = env.default_params(bank)
    t0 = time.perf_counter()
    camera = Camera.build(cfg.render, bank)
    build_s = time.perf_counter() - t0
    shape = obs_shape(cfg.render, cfg.env, int(env.observation_shape(params)[-1]), args.perception_coef > 0)
    net = make_network(cfg.network, cfg.env, shape, jax.random.PRNGKey(0))
    ppo = make_camera_ppo(cfg.ppo, env, net, camera, args.seeds, True, args.perception_coef, profile=True,
                          frames=cfg.render.frames)  # fmt: skip
    env_params = adversaries.with_daa(params, args.num_envs, DAA_BEHAVIOURS if args.daa else (), jax.random.PRNGKey(1))
    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
    runner = ppo.init(keys, init_params(cfg.network, cfg.env, shape, keys), env_params)
    t0 = time.perf_counter()
    runner, m = ppo.update(runner, env_params)  # compiles
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t0
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for k in ppo.timers:
        ppo.timers[k] = 0.0
    t0 = time.perf_counter()
    runner, m = ppo.chunk(runner, env_params)
    jax.block_until_ready(m)
    dt = time.perf_counter() - t0
    steps = args.updates * ppo.env_steps_per_update * args.seeds
    jax_peak = None
    stats = jax.devices()[0].memory_stats() if jax.default_backend() == "gpu" else None
    if stats:
        jax_peak = stats.get("peak_bytes_in_use", 0) / 2**30
    res = {
        "obs": "camera", "frames": args.frames, "backend": camera.renderer.backend, "rig": args.rig, "width": args.width, "height": args.height,
        "gaussians_per_env": camera.renderer.scene_bank.gaussians_per_env, "num_envs": args.num_envs, "seeds": args.seeds,
        "num_steps": args.num_steps, "updates": args.updates, "epochs": args.epochs, "minibatches": args.minibatches,
        "channels": args.channels, "compute_dtype": args.compute_dtype, "scene_build_s": build_s, "first_update_s": compile_s, "timed_s": dt,
        "env_steps_per_s": steps / dt, "split_s": dict(ppo.timers),
        "split_share": {k: v / dt for k, v in ppo.timers.items()},
        "torch_peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None, "jax_peak_gib": jax_peak,
        "final_return": float(np.mean(m["return"][..., -1])),
    }  # fmt: skip
    print(f"camera PPO: {res['env_steps_per_s']:,.0f} env-steps/s, {args.num_envs} envs x {args.seeds} seed(s), "
          f"{args.width}x{args.height} {args.rig}, {res['gaussians_per_env']:,} Gaussians/env; split "
          + ", ".join(f"{k} {v:.2f} s" for k, v in ppo.timers.items()) + f" of {dt:.2f} s")  # fmt: skip
    return res
