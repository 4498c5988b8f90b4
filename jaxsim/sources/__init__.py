"""Scenario sources other than the embedded procedural default.

`jaxsim.sources.nuscenes` converts real nuScenes driving logs into a ScenarioBank that
stacks with procedural banks (same padded sizes). Sources are numpy code run offline;
nothing here is traced by JAX except the bicycle re-integration of the ego log.
"""
