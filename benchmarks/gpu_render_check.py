"""GPU checks of the render bridge; prints JSON. Run on the GPU machine:

    XLA_PYTHON_CLIENT_PREALLOCATE=false python benchmarks/gpu_render_check.py [--json out.json]

1. parity: the same procedural scene drawn by gsplat and by the reference splatter
   (both on the GPU, float images without sky); PSNR must reach PARITY_PSNR_DB.
2. zero copy: JAX -> torch and torch -> JAX through DLPack keep the device pointer, and
   a full `Renderer.render` returns a JAX array aliasing the torch output buffer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PARITY_PSNR_DB = 40.0


def demo_bank(num: int = 1):
    """Procedural held-out scenarios (the embedded default)."""
    from jaxsim.procedural import generate_bank

    return generate_bank(num, split="heldout", seed=0)


def render_inputs(bank, rig, num_envs: int, t: int = 0, draw_ego: bool = False):
    """JAX (scenario_idx (B,), poses (B, 1+A, 4), viewmats (B, C, 4, 4)) at log step t of scenarios 0.. cycled."""
    import jax
    import jax.numpy as jnp

    from render_bridge import cameras

    n = bank.ego_traj.shape[0]
    idx = jnp.arange(num_envs, dtype=jnp.int32) % n
    ego = bank.ego_traj[idx, t]
    poses = jax.vmap(lambda e, a, v: cameras.actor_poses(e, a, v, draw_ego))(
        ego, bank.agent_traj[idx, t], bank.agent_valid[idx, t]
    )
    views = jax.vmap(lambda e: cameras.view_matrices(e, rig))(ego)
    return idx, poses, views


def psnr(a, b) -> float:
    import torch

    mse = torch.mean((a.float() - b.float()) ** 2).item()
    return float("inf") if mse == 0 else 10.0 * torch.log10(torch.tensor(1.0 / mse)).item()


def parity(gaussians: int = 20_000, size: int = 128, rig_name: str = "nuscenes6") -> dict:

    from render_bridge import dlpack_bridge as bridge
    from render_bridge.cameras import RigConfig
    from render_bridge.procedural_world import WorldConfig, build_scene_bank
    from render_bridge.renderer import Renderer

    bank = demo_bank(1)
    sb = build_scene_bank(bank, WorldConfig(target_gaussians=gaussians))
    rig = RigConfig(rig_name, size, size)
    idx, poses, views = (bridge.jax_to_torch(x) for x in render_inputs(bank, rig, 1, t=5))
    out = {}
    for name in ("gsplat", "reference"):
        r = Renderer(sb, rig, backend=name, device="cuda", sky=False, dtype="float32")
        out[name] = r.render_torch(idx, poses, views)
    value = psnr(out["gsplat"], out["reference"])
    return {"parity_psnr_db": value, "parity_threshold_db": PARITY_PSNR_DB, "parity_ok": value >= PARITY_PSNR_DB,
            "parity_max_abs": float((out["gsplat"] - out["reference"]).abs().max()),
            "parity_gaussians": sb.gaussians_per_env, "parity_images": int(out["gsplat"].shape[1])}  # fmt: skip


def zero_copy() -> dict:
    import jax
    import jax.numpy as jnp
    import torch

    from render_bridge import dlpack_bridge as bridge
    from render_bridge.cameras import RigConfig
    from render_bridge.procedural_world import WorldConfig, build_scene_bank
    from render_bridge.renderer import Renderer

    x = jnp.arange(4096, dtype=jnp.float32).reshape(64, 64) * 2.0
    t = bridge.jax_to_torch(x)
    img = torch.randint(0, 255, (4, 3, 32, 32, 3), dtype=torch.uint8, device="cuda")
    j = bridge.torch_to_jax(img)
    bank = demo_bank(1)
    r = Renderer(
        build_scene_bank(bank, WorldConfig(target_gaussians=5000)), RigConfig("front", 64, 64), backend="gsplat"
    )
    inputs = render_inputs(bank, r.rig, 4)
    captured = {}
    orig = r.render_torch

    def spy(*a):
        captured["out"] = orig(*a)
        return captured["out"]

    r.render_torch = spy
    images = r.render(*inputs)
    return {
        "jax_to_torch_same_pointer": t.data_ptr() == bridge.jax_pointer(x) and t.is_cuda,
        "jax_to_torch_values_equal": bool(torch.equal(t.cpu(), torch.from_numpy(jax.device_get(x)))),
        "torch_to_jax_same_pointer": bridge.jax_pointer(j) == img.data_ptr(),
        "torch_to_jax_on_gpu": next(iter(j.devices())).platform == "gpu",
        "renderer_output_same_pointer": bridge.jax_pointer(images) == captured["out"].data_ptr(),
        "renderer_output_shape": list(images.shape),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", default=None)
    p.add_argument("--gaussians", type=int, default=20_000)
    p.add_argument("--size", type=int, default=128)
    args = p.parse_args(argv)
    res = {**parity(args.gaussians, args.size), **zero_copy()}
    print(json.dumps(res, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    ok = res["parity_ok"] and all(v for k, v in res.items() if k.endswith("pointer"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
