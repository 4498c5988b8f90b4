"""`reconrl bench daa`: DAA sampling + trajectory check at scale, the env step with DAA on
against off, and (`--search`) random sampling vs gradient adversary search.

    reconrl bench daa --json out.json                       # 65,536 envs (GPU sizes)
    reconrl bench daa --num-envs 256 --steps 10 --search --search-envs 32 --rollouts 4   # CPU
"""

from __future__ import annotations

import time


def add_arguments(p) -> None:
    p.add_argument("--num-envs", type=int, default=65536, help="envs for sampling/check and the step timing")
    p.add_argument("--steps", type=int, default=50, help="env steps per timed rollout")
    p.add_argument("--bank-size", type=int, default=256, help="scenarios in the bank")
    p.add_argument(
        "--source",
        choices=("procedural", "scenes"),
        default="procedural",
        help="procedural generator bank, or jaxsim.daa.scenes straight roads (fallback when missing)",
    )
    p.add_argument("--obs", choices=("none", "vector"), default="none", help="observation computed in the step timing")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (best is reported)")
    p.add_argument("--skip-autoreset", action="store_true", help="time only the plain step, not AutoResetWrapper")
    p.add_argument("--search", action="store_true", help="also compare random vs gradient adversary search")
    p.add_argument("--search-envs", type=int, default=4096)
    p.add_argument("--rollouts", type=int, default=8, help="rollouts per env for each search method")
    p.add_argument("--lr", type=float, default=0.3, help="Adam step in normalised knob units")
    p.add_argument("--policy", choices=("yield", "expert"), default="yield", help="fixed ego policy for the search")
    p.add_argument("--seed", type=int, default=0)


def _bank(args):
    if args.source == "procedural":
        try:
            from jaxsim.procedural import generate_bank

            return generate_bank(args.bank_size, split="train", seed=args.seed), "procedural"
        except ImportError:
            pass
    from jaxsim.daa.scenes import corner_case_bank

    return corner_case_bank(args.bank_size, seed=args.seed), "scenes"


def _best(fn, repeats):
    import jax

    jax.block_until_ready(fn())  # compile
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return min(times)


def run(args) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxsim import daa
    from jaxsim.env import DrivingEnv, EnvConfig
    from jaxsim.wrappers import AutoResetWrapper, VmapWrapper, broadcast_params

    bank, source = _bank(args)
    n = args.num_envs
    key = jax.random.PRNGKey(args.seed)
    env = DrivingEnv(EnvConfig(obs=args.obs))
    base = broadcast_params(env.default_params(bank), n)
    on = base.replace(daa=daa.sample_params(key, n))
    out = {"source": source, "num_envs": n, "bank_size": int(bank.ego_traj.shape[0]), "steps": args.steps,
           "budget": int(on.daa.budget)}  # fmt: skip

    # 1. sampling + target selection + trajectory check (all inside reset)
    venv = VmapWrapper(env, n, batched_params=True)

    @jax.jit
    def sample_and_check(k):
        d = daa.sample_params(k, n)
        _, s = venv.reset(k, base.replace(daa=d))
        return s.adv

    adv = sample_and_check(key)
    sec = _best(lambda: sample_and_check(key), args.repeats)
    out["sample_check_s"] = sec
    out["sample_check_envs_per_s"] = n / sec
    out["first_candidate_reason_shares"] = daa.reason_shares(adv.reason)
    out["final_status_shares"] = daa.reason_shares(adv.status)
    out["adversary_active_share"] = float(np.mean(np.asarray(adv.active)))
    out["spawned_share"] = float(np.mean(np.asarray(adv.spawned)))
    out["mean_tries"] = float(np.mean(np.asarray(adv.tries)))

    # 2. env step, DAA on vs off (same program shape, a fixed mid anchor as the action)
    action = jnp.broadcast_to(jnp.array([30, 20], jnp.int32), (n, 2))

    def timed(wrapper, params):
        _, s0 = wrapper.reset(key, params)

        @jax.jit
        def roll(s):
            def body(s, k):
                _, s, r, *_ = wrapper.step(k, s, action, params)
                return s, r

            return jax.lax.scan(body, s, jax.random.split(key, args.steps))

        return args.steps * n / _best(lambda: roll(s0), args.repeats)

    wrappers = [("step", venv)]
    if not args.skip_autoreset:  # AutoResetWrapper runs reset (DAA planning + check) every step
        wrappers.append(("step_autoreset", VmapWrapper(AutoResetWrapper(env), n, batched_params=True)))
    for name, wrapper in wrappers:
        off_sps = timed(wrapper, base)
        on_sps = timed(wrapper, on)
        out[f"{name}_off_env_steps_per_s"] = off_sps
        out[f"{name}_on_env_steps_per_s"] = on_sps
        out[f"{name}_slowdown"] = off_sps / on_sps

    if args.search:
        out["search"] = search_compare(args, bank)
    for k, v in out.items():
        print(f"{k}: {v}")
    return out


def search_compare(args, bank) -> dict:
    """Random sampling vs gradient search, same rollouts per env, fixed ego policy."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxsim import daa
    from jaxsim.daa import search
    from jaxsim.env import DrivingEnv, EnvConfig
    from jaxsim.wrappers import broadcast_params

    m, r = args.search_envs, args.rollouts
    env = DrivingEnv(EnvConfig(action_space="continuous", obs="none"))
    key = jax.random.PRNGKey(args.seed + 1)
    params = broadcast_params(env.default_params(bank), m).replace(daa=daa.sample_params(key, m, search.SEARCH_CONFIG))
    idx = jnp.arange(m) % bank.ego_traj.shape[0]
    policy = search.yielding_policy(env) if args.policy == "yield" else search.expert_policy
    rand = jax.jit(lambda k: search.random_search(env, params, idx, k, r, policy=policy))
    grad = jax.jit(lambda k: search.gradient_search(env, params, idx, k, r, lr=args.lr, policy=policy)[:2])
    res = {"envs": m, "rollouts_per_env": r, "policy": args.policy, "lr": args.lr}
    for name, fn in (("random", rand), ("gradient", grad)):
        found, hits = jax.block_until_ready(fn(key))
        t0 = time.perf_counter()
        found, hits = jax.block_until_ready(fn(key))
        res[name] = {"envs_with_collision": float(np.mean(np.asarray(found))),
                     "collisions_per_rollout": float(np.mean(np.asarray(hits)) / r),
                     "seconds": time.perf_counter() - t0}  # fmt: skip
    beh = np.asarray(params.daa.behaviour)
    res["by_behaviour"] = {}
    for code in np.unique(beh):
        res["by_behaviour"][daa.BEHAVIOUR_NAMES[code]] = int(np.sum(beh == code))
    return res
