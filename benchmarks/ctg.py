"""`reconrl bench ctg`: cousins sampled and checked per second.

Target configuration (GPU): 65,536 envs x K = 8 cousins in one jitted call, envs drawn
uniformly from a procedural bank. Reports cousins/s (sampled and checked), envs/s, the
acceptance rate and the compile time. Runs on CPU at small sizes (e.g. --num-envs 64).
"""

from __future__ import annotations

import time


def add_arguments(parser) -> None:
    parser.add_argument("--num-envs", type=int, default=65536, help="envs per call (default %(default)s)")
    parser.add_argument("--k", type=int, default=8, help="cousins per env (default %(default)s)")
    parser.add_argument(
        "--scenarios", type=int, default=256, help="procedural scenarios in the bank (default %(default)s)"
    )
    parser.add_argument("--bank", default=None, help="scenario bank .npz instead of procedural scenarios")
    parser.add_argument("--iters", type=int, default=5, help="timed calls after warm-up (default %(default)s)")
    parser.add_argument(
        "--chunk", type=int, default=0, help="envs per lax.map chunk, 0 = one vmap (default %(default)s)"
    )
    parser.add_argument("--no-agents", action="store_true", help="skip the overlap check against logged agents")


def run(args) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxsim.ctg import CTGConfig, sample_cousins
    from jaxsim.env import DrivingEnv, EnvConfig

    for name in ("num_envs", "k", "scenarios", "iters"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.bank:
        from jaxsim.bank_io import load_bank

        bank = load_bank(args.bank)
    else:
        from jaxsim.procedural import generate_bank

        bank = generate_bank(args.scenarios, split="train", seed=0)
    params = DrivingEnv(EnvConfig(obs="none")).default_params(bank)
    cfg = CTGConfig(num_cousins=args.k, check_agents=not args.no_agents)
    n_bank = bank.ego_traj.shape[0]

    @jax.jit
    def call(key):
        k_idx, k_ctg = jax.random.split(key)
        idx = jax.random.randint(k_idx, (args.num_envs,), 0, n_bank)
        c = sample_cousins(k_ctg, params, idx, cfg, chunk=args.chunk)
        # reduce on device so the timing excludes host transfers of the trajectories
        return jnp.sum(c.accepted), jnp.sum(c.states[..., -1, 0]), c.reasons

    t0 = time.perf_counter()
    jax.block_until_ready(call(jax.random.PRNGKey(0)))
    compile_s = time.perf_counter() - t0
    times, accepted = [], []
    for i in range(args.iters):
        t0 = time.perf_counter()
        acc, _, reasons = jax.block_until_ready(call(jax.random.PRNGKey(i + 1)))
        times.append(time.perf_counter() - t0)
        accepted.append(int(acc))
    per_call = float(np.median(times))
    cousins = args.num_envs * args.k
    result = {
        "num_envs": args.num_envs,
        "k": args.k,
        "cousins_per_call": cousins,
        "check_agents": not args.no_agents,
        "chunk": args.chunk,
        "compile_s": compile_s,
        "call_s_median": per_call,
        "call_s_min": float(np.min(times)),
        "cousins_per_s": cousins / per_call,
        "envs_per_s": args.num_envs / per_call,
        "acceptance_rate": float(np.mean(accepted)) / cousins,
        "bank_scenarios": n_bank,
    }
    print(f"ctg: {cousins} cousins in {per_call * 1e3:.1f} ms -> {result['cousins_per_s']:.3g} cousins/s "
          f"({result['acceptance_rate']:.1%} accepted, compile {compile_s:.1f} s)")  # fmt: skip
    return result
