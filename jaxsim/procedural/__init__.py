"""The embedded default scenario source: procedurally generated driving logs.

    from jaxsim.procedural import GeneratorConfig, generate_bank, generate_scenario
    bank = generate_bank(1000, split="train", seed=0)      # ScenarioBank, N = 1000
    one = generate_scenario(int(bank.scenario_id[3]))      # == bank[3]

Layouts: multi-lane straight road, curved road, four-way intersection, on-ramp merge.
Other agents replay logs simulated with IDM car following and lane changes; the expert
ego is driven by pure pursuit through the exact bicycle model of jaxsim.kinematics.
"""

from jaxsim.procedural.config import LAYOUT_NAMES, GeneratorConfig
from jaxsim.procedural.generate import generate_arrays, generate_bank, generate_scenario
from jaxsim.procedural.seeding import SPLITS, scenario_seed

__all__ = [
    "GeneratorConfig",
    "generate_bank",
    "generate_arrays",
    "generate_scenario",
    "scenario_seed",
    "SPLITS",
    "LAYOUT_NAMES",
]
