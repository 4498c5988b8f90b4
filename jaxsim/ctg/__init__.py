"""Cousin Trajectory Generator (CTG): diverse, feasible variants of expert trajectories.

    from jaxsim import ctg
    cfg = ctg.CTGConfig(num_cousins=8)
    cousins = jax.jit(ctg.sample_cousins, static_argnames=("cfg", "chunk"))(key, params, idx, cfg)
    cousins.accepted, cousins.route, cousins.reasons     # (N, K), (N, K, T, 4), RejectReason bits

Modules: config (CTGConfig, family and reason codes), paths (base paths along the lane
graph), profiles (quintic lateral / speed profiles, bicycle-consistent timing), check
(feasibility with reason codes), cousins (sampling), imitation (IL pairs), reset
(episodes on cousins), stats (diversity report).
"""

from jaxsim.ctg.check import check, check_states, primary_reason
from jaxsim.ctg.config import CTGConfig, Lateral, RejectReason, Speed, reason_names
from jaxsim.ctg.cousins import Cousins, generate_cousins, sample_cousins

__all__ = [
    "CTGConfig",
    "Cousins",
    "Lateral",
    "RejectReason",
    "Speed",
    "check",
    "check_states",
    "generate_cousins",
    "primary_reason",
    "reason_names",
    "sample_cousins",
]
