"""Adapters that expose `DrivingEnv` through other RL libraries' env interfaces.

  BraxDrivingEnv     brax `Env` (continuous [-1, 1] actions), for brax's trainers.
  DrivingVectorEnv   Gymnasium `VectorEnv`: batched, numpy in/out, one jitted step.
  DrivingGymEnv      Gymnasium `Env` for a single env (passes `check_env`).

brax and gymnasium are optional dependencies, so they are imported only when one of
these names is first used (`from jaxsim.adapters import DrivingGymEnv`).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "BraxDrivingEnv": "jaxsim.adapters.brax_env",
    "DrivingVectorEnv": "jaxsim.adapters.gym_env",
    "DrivingGymEnv": "jaxsim.adapters.gym_env",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'jaxsim.adapters' has no attribute {name!r}")
