"""render_bridge: camera observations for jaxsim through 3D Gaussian Splatting (torch).

JAX computes where every car and camera is (`render_bridge.cameras`, pure JAX); torch
owns every Gaussian and every image. Poses cross JAX -> torch and images torch -> JAX
through DLPack without a host round trip (`render_bridge.dlpack_bridge`).

Modules: scene (Gaussian sets, actor posing, per-env composition), procedural_world
(a 3DGS world built from any Scenario), sky (environment-map background), ply (3DGS
PLY import/export), backends (gsplat on CUDA, a pure-torch reference splatter),
renderer (chunked batched rendering), camera_env (a camera-observation env wrapper).

With JAX and torch on one GPU set `XLA_PYTHON_CLIENT_PREALLOCATE=false` (or
`XLA_PYTHON_CLIENT_MEM_FRACTION`) before importing jax, or gsplat runs out of memory.
"""
