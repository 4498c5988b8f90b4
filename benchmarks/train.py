"""`reconrl bench train`: PPO training throughput (env-steps/s, rollout + update) at a given
number of envs, with the vector observation or (`--obs camera`) from 3DGS pixels
(`benchmarks.train_camera`). Light top-level imports (bench convention).

    reconrl bench train --num-envs 4096 --json out.json          # GPU machine
    reconrl bench train --num-envs 64 --updates 4 --scenarios 16  # quick CPU check
    reconrl bench train --obs camera --num-envs 1024 --width 128 --height 128 --gaussians 200000
    reconrl bench train --num-envs 16384 --devices 1 --compare-unsharded   # mesh overhead on one GPU
    reconrl bench train --num-envs 16384 --devices 1,2,4,8                  # scaling over a host's GPUs

`--devices` runs the sharded trainer (`agents.sharded_ppo`, env batch over a mesh of the
first D devices, same global batch) for each D and reports env-steps/s per device and the
scaling efficiency (per-device rate / the smallest D's per-device rate).
`--compare-unsharded` also times today's single-device program and reports the sharded
path's cost against it (`sharded_overhead` = unsharded rate / sharded rate at D=1, - 1).
"""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("--num-envs", type=int, default=4096, help="parallel envs (default %(default)s)")
    p.add_argument("--num-steps", type=int, default=16, help="rollout length per update")
    p.add_argument("--updates", type=int, default=10, help="timed PPO updates (after one warm-up chunk)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--minibatches", type=int, default=4)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--substeps", type=int, default=5, help="log steps per env step (RAD: 5 = 0.5 s)")
    p.add_argument("--scenarios", type=int, default=256, help="procedural training scenarios")
    p.add_argument("--daa", action="store_true", help="DAA adversaries on (all behaviours)")
    p.add_argument("--seeds", type=int, default=1, help="seeds trained at once (jax.vmap)")
    p.add_argument("--obs", choices=("vector", "camera"), default="vector", help="observation the policy sees")
    p.add_argument(
        "--devices",
        default="",
        help="comma-separated device counts for the sharded trainer "
        "(e.g. 1,2,4,8 or all); empty: today's single-device program only",
    )
    p.add_argument(
        "--compare-unsharded",
        action="store_true",
        help="with --devices: also time the single-device program and report the sharded path's overhead",
    )
    p.add_argument("--repeats", type=int, default=1, help="timed chunks per configuration (median reported)")
    from benchmarks.train_camera import add_camera_arguments

    add_camera_arguments(p)


def run(args) -> dict:
    if args.obs == "camera":
        from benchmarks.train_camera import run_camera

        return run_camera(args)
    import jax
    import numpy as np

    from agents import adversaries
    from agents.networks import init_params, make_network
    from agents.ppo import make_ppo
    from agents.train_config import DAA_BEHAVIOURS, load_config
    from jaxsim.env import DrivingEnv
    from jaxsim.procedural import generate_bank

    cfg = load_config(None, [
        f"ppo.num_envs={args.num_envs}", f"ppo.num_steps={args.num_steps}", f"ppo.updates_per_chunk={args.updates}",
        f"ppo.epochs={args.epochs}", f"ppo.num_minibatches={args.minibatches}", f"network.hidden={args.hidden}",
        f"env.substeps={args.substeps}", f"seeds={args.seeds}",
    ])  # fmt: skip
    env = DrivingEnv(cfg.env)
    params = env.default_params(generate_bank(args.scenarios, split="train", seed=0))
    obs_shape = env.observation_shape(params)
    net = make_network(cfg.network, cfg.env, obs_shape, jax.random.PRNGKey(0))
    ppo = make_ppo(cfg.ppo, env, net, batched_params=True)
    behaviours = DAA_BEHAVIOURS if args.daa else ()
    env_params = adversaries.with_daa(params, args.num_envs, behaviours, jax.random.PRNGKey(1))
    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
    p0 = init_params(cfg.network, cfg.env, obs_shape, keys)
    steps = args.updates * ppo.env_steps_per_update * args.seeds
    res = {
        "num_envs": args.num_envs, "seeds": args.seeds, "num_steps": args.num_steps, "updates": args.updates,
        "epochs": args.epochs, "minibatches": args.minibatches, "hidden": args.hidden, "substeps": args.substeps,
        "daa": bool(args.daa), "obs_dim": int(np.prod(obs_shape)),
    }  # fmt: skip
    if not args.devices or args.compare_unsharded:
        runner = jax.vmap(ppo.init, in_axes=(0, 0, None))(keys, p0, env_params)
        chunk = jax.jit(jax.vmap(ppo.chunk, in_axes=(0, None)))
        compile_s, dt = _time_chunks(chunk, runner, env_params, args.repeats)
        res.update(
            first_chunk_s=compile_s, timed_s=dt, env_steps_per_s=steps / dt, sim_steps_per_s=steps * args.substeps / dt
        )
        print(f"PPO: {res['env_steps_per_s']:,.0f} env-steps/s ({res['sim_steps_per_s']:,.0f} log steps/s) "
              f"with {args.num_envs} envs x {args.seeds} seed(s); first chunk (compile) {compile_s:.1f} s")  # fmt: skip
    if args.devices:
        res["sharded"] = _sharded_rows(args, cfg, env, net, keys, p0, env_params, steps)
        if args.compare_unsharded and res["sharded"][0]["devices"] == 1:
            res["sharded_overhead"] = res["env_steps_per_s"] / res["sharded"][0]["env_steps_per_s"] - 1.0
            print(
                f"sharded path on 1 device costs {100 * res['sharded_overhead']:+.1f}% against the single-device program"
            )
    return res


def _time_chunks(chunk, runner, env_params, repeats: int):
    """(first call incl. compile, median of `repeats` timed calls) in seconds."""
    import time

    import jax
    import numpy as np

    t0 = time.perf_counter()
    runner, m = chunk(runner, env_params)
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(max(repeats, 1)):
        t0 = time.perf_counter()
        runner, m = chunk(runner, env_params)
        jax.block_until_ready(m)
        times.append(time.perf_counter() - t0)
    return compile_s, float(np.median(times))


def _sharded_rows(args, cfg, env, net, keys, p0, env_params, steps) -> list:
    """One row per device count: env-steps/s in total and per device, scaling efficiency."""
    from agents.ppo import make_ppo
    from agents.sharded_ppo import shard_ppo
    from agents.sharding import make_mesh, resolve_devices

    rows = []
    for d in args.devices.split(","):
        n = resolve_devices(d.strip(), args.num_envs, "--num-envs")
        mesh = make_mesh(n)
        sp = shard_ppo(
            make_ppo(cfg.ppo, env, net, batched_params=True, mesh=mesh), mesh, keys, p0, env_params, args.num_envs
        )
        compile_s, dt = _time_chunks(sp.chunk, sp.runner, sp.env_params, args.repeats)
        rows.append({"devices": n, "first_chunk_s": compile_s, "timed_s": dt, "env_steps_per_s": steps / dt,
                     "env_steps_per_s_per_device": steps / dt / n})  # fmt: skip
        del sp
    base = rows[0]["env_steps_per_s_per_device"]
    for r in rows:
        r["scaling_efficiency"] = r["env_steps_per_s_per_device"] / base
        print(f"sharded PPO on {r['devices']} device(s): {r['env_steps_per_s']:,.0f} env-steps/s, "
              f"{r['env_steps_per_s_per_device']:,.0f} per device, efficiency {r['scaling_efficiency']:.2f}; "
              f"first chunk {r['first_chunk_s']:.1f} s", flush=True)  # fmt: skip
    return rows
