"""`reconrl bench sim`: env-steps/s of the batched step (events, rewards, metrics,
auto-reset) against the number of envs and agents, without and with the vector
observation, with log-replay or reactive (IDM, `--traffic idm`) traffic; with both,
each IDM row gets `slowdown_vs_log` (its step time over the matching log-replay row's).

Each configuration runs `--steps` env steps inside one jitted `lax.scan` (so Python
dispatch is not measured), after one warm-up call that compiles; the median of
`--repeats` timed calls is reported. Memory per env is the size of the state (and
observation) pytree divided by the number of envs.

`--devices 1,2,4,8` shards the env batch over a mesh of the first D devices
(`agents.sharding`, params and bank replicated) and adds env-steps/s per device and the
scaling efficiency (per-device rate / the first D's, same settings) to each row.
"""

from __future__ import annotations

import time

import numpy as np


def add_arguments(p) -> None:
    p.add_argument("--envs", default="1024,4096,16384,65536", help="comma-separated env counts")
    p.add_argument("--agents", default="32", help="comma-separated agent slots (bank padded/cut to each)")
    p.add_argument(
        "--obs", default="none,vector", help="comma-separated observation types (vector+gaps: with env.obs_gaps)"
    )
    p.add_argument("--steps", type=int, default=100, help="env steps per timed call")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--scenarios", type=int, default=64, help="procedural scenarios in the bank")
    p.add_argument("--traffic", default="log", help="comma-separated traffic actors: log, idm (default %(default)s)")
    p.add_argument(
        "--devices",
        default="",
        help="comma-separated device counts (or all) to shard the envs over; empty: one device, no mesh",
    )
    p.add_argument("--final-obs", default="1", help="comma-separated 1/0: auto-reset keeps the final observation")


def resize_agents(bank, num_agents: int):
    """Pad (invalid slots) or cut the bank's agent axis to `num_agents`."""
    import jax.numpy as jnp

    a = bank.max_agents
    if num_agents <= a:
        return bank.replace(
            agent_traj=bank.agent_traj[:, :, :num_agents], agent_valid=bank.agent_valid[:, :, :num_agents],
            agent_size=bank.agent_size[:, :num_agents], agent_type=bank.agent_type[:, :num_agents],
        )  # fmt: skip
    pad = num_agents - a

    def grow(x, axis):
        widths = [(0, 0)] * x.ndim
        widths[axis] = (0, pad)
        return jnp.pad(x, widths)

    return bank.replace(
        agent_traj=grow(bank.agent_traj, 2), agent_valid=grow(bank.agent_valid, 2),
        agent_size=grow(bank.agent_size, 1), agent_type=grow(bank.agent_type, 1),
    )  # fmt: skip


def env_config(obs_type: str, traffic: str):
    """`--obs` names an EnvConfig.obs value, or "vector+gaps" (vector with the gaps block)."""
    from jaxsim.env import EnvConfig

    if obs_type == "vector+gaps":
        return EnvConfig(obs="vector", obs_gaps=True, traffic=traffic)
    return EnvConfig(obs=obs_type, traffic=traffic)


def step_bytes(num_agents: int, num_steps: int, obs_dim: int) -> int:
    """Fewest bytes one env step must move: the state read and written, the agents'
    slice of the log, the reference path for the closest-point search, 16 SDF cells,
    the observation written."""
    state = 4 * (4 + 2 + 2 + 1 + 1 + 1 + 1 + 7)  # scalars and small vectors, both ways
    route = 4 * 4 * num_steps
    agents = num_agents * (4 * 4 + 1 + 2 * 4)
    sdf = 16 * 4
    return 2 * state + route + agents + sdf + 4 * obs_dim


def run(args) -> dict:
    import jax
    import jax.numpy as jnp

    from jaxsim.config_utils import check_choice
    from jaxsim.env import DrivingEnv
    from jaxsim.procedural import generate_bank
    from jaxsim.traffic import ACTOR_NAMES
    from jaxsim.wrappers import AutoResetWrapper, VmapWrapper

    traffics = args.traffic.split(",")
    for t in traffics:
        check_choice("--traffic", t, ACTOR_NAMES)
    base = generate_bank(args.scenarios, split="train", seed=0)
    rows = []
    combos = [(o, f, tr) for o in args.obs.split(",") for f in map(int, args.final_obs.split(",")) for tr in traffics]
    for obs_type, final_obs, traffic in combos:
        if obs_type == "none" and not final_obs:
            continue
        for num_agents in map(int, args.agents.split(",")):
            bank = resize_agents(base, num_agents)
            for n, d in [
                (n, d)
                for n in map(int, args.envs.split(","))
                for d in (args.devices.split(",") if args.devices else [""])
            ]:
                env = VmapWrapper(AutoResetWrapper(DrivingEnv(env_config(obs_type, traffic)), bool(final_obs)), n)
                params = env.default_params(bank)
                action = jnp.tile(jnp.array([30, 20], jnp.int32), (n, 1))

                def rollout(key, state, params):
                    def body(carry, k):
                        state, acc = carry
                        obs, state, reward, *_ = env.step(k, state, action, params)
                        return (state, acc + reward.sum() + obs.sum() * 0.0), None

                    (state, acc), _ = jax.lax.scan(body, (state, jnp.zeros(())), jax.random.split(key, args.steps))
                    return state, acc

                run_fn, reset_fn = jax.jit(rollout, donate_argnums=(1,)), jax.jit(env.reset)
                devices = 0
                if d:  # env batch over a mesh: state sharded, params and bank replicated
                    from agents.sharding import env_sharded, make_mesh, put, replicated, resolve_devices, tree_shardings

                    devices = resolve_devices(d.strip(), n, "--envs")
                    mesh = make_mesh(devices)
                    params = put(params, tree_shardings(params, replicated(mesh)))
                    reset_fn = jax.jit(env.reset, out_shardings=env_sharded(mesh))
                    run_fn = jax.jit(rollout, donate_argnums=(1,), out_shardings=(env_sharded(mesh), replicated(mesh)))
                obs, state = reset_fn(jax.random.PRNGKey(0), params)
                obs_dim = int(np.prod(obs.shape[1:]))
                mem = sum(x.nbytes for x in jax.tree.leaves(state)) + obs.nbytes
                state, acc = run_fn(jax.random.PRNGKey(1), state, params)
                jax.block_until_ready(acc)
                times = []
                for r in range(args.repeats):
                    t0 = time.perf_counter()
                    state, acc = run_fn(jax.random.PRNGKey(2 + r), state, params)
                    jax.block_until_ready(acc)
                    times.append(time.perf_counter() - t0)
                cache = getattr(run_fn, "_cache_size", lambda: -1)()
                sec = float(np.median(times))
                rate = n * args.steps / sec
                nbytes = step_bytes(num_agents, bank.num_steps, obs_dim)
                row = {
                    "obs": obs_type, "traffic": traffic, "final_obs": bool(final_obs), "envs": n, "agents": num_agents, "env_steps_per_s": rate,
                    "sec_per_call": sec, "spread": float(np.max(times) / np.min(times)),
                    "bytes_per_env": mem / n, "floor_bytes_per_env_step": nbytes,
                    "achieved_GBps_at_floor_bytes": rate * nbytes / 1e9, "compilations": cache,
                }  # fmt: skip
                if devices:
                    row.update(devices=devices, env_steps_per_s_per_device=rate / devices)
                    same = [
                        r
                        for r in rows
                        if r.get("devices")
                        and all(r[k] == row[k] for k in ("obs", "traffic", "final_obs", "envs", "agents"))
                    ]
                    row["scaling_efficiency"] = (
                        row["env_steps_per_s_per_device"] / (same or [row])[0]["env_steps_per_s_per_device"]
                    )
                rows.append(row)
                print(
                    f"obs={obs_type:6s} traffic={traffic:3s} final_obs={final_obs} envs={n:6d} agents={num_agents:3d}  {rate / 1e6:9.2f} M env-steps/s  "
                    f"mem/env={mem / n:7.0f} B  floor bytes/step={nbytes}  compiles={cache}"
                    + (f"  devices={devices} efficiency={row['scaling_efficiency']:.2f}" if devices else ""),
                    flush=True,
                )
                del state
    _add_slowdown(rows)
    return {"rows": rows, "steps_per_call": args.steps}


def _add_slowdown(rows: list) -> None:
    """IDM rows: `slowdown_vs_log` = log-replay rate / IDM rate at the same settings."""
    key = lambda r: (r["obs"], r["final_obs"], r["envs"], r["agents"], r.get("devices"))  # noqa: E731
    log = {key(r): r["env_steps_per_s"] for r in rows if r["traffic"] == "log"}
    for r in rows:
        if r["traffic"] == "idm" and key(r) in log:
            r["slowdown_vs_log"] = log[key(r)] / r["env_steps_per_s"]
            print(f"idm/log step time at obs={r['obs']} envs={r['envs']}: {r['slowdown_vs_log']:.2f}x", flush=True)
