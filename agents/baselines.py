"""Compatibility import for `agents.ppo` (owned elsewhere): the scripted drivers and IDM
maths moved to `jaxsim.drivers`; import from there. Remove this module once `agents.ppo`
imports `jaxsim.drivers.lead_gap`."""
from jaxsim.drivers import lead_gap

__all__ = ["lead_gap"]
