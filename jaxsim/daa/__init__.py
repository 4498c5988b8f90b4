"""Dynamic Adversary Agent (DAA): closed-loop, batched corner-case adversaries.

    from jaxsim import daa
    params = broadcast_params(env.default_params(bank), n).replace(daa=daa.sample_params(key, n))
    params_one = env.default_params(bank).replace(daa=daa.from_prompt("a vehicle on the right cuts in"))

Modules: params (DAAParams, DAAConfig, sampling), select (target choice), behaviours
(the closed-loop controller, AdvState), check (trajectory check, reset-time planning),
prompt (text -> DAAParams), evaluate (metrics per behaviour), search (gradient-based
adversary search; imports the env, so import it as `jaxsim.daa.search`).
"""

from jaxsim.daa.behaviours import AdvState
from jaxsim.daa.check import REASON_NAMES, Reason, check_trajectory, reason_shares
from jaxsim.daa.evaluate import metrics_by_behaviour
from jaxsim.daa.params import (
    BEHAVIOUR_NAMES,
    KNOB_NAMES,
    Behaviour,
    DAAConfig,
    DAAParams,
    Fallback,
    KnobRanges,
    Knobs,
    params_for,
    sample_params,
)
from jaxsim.daa.prompt import PromptError, from_prompt

__all__ = [
    "AdvState", "REASON_NAMES", "Reason", "check_trajectory", "reason_shares", "metrics_by_behaviour",
    "BEHAVIOUR_NAMES", "KNOB_NAMES", "Behaviour", "DAAConfig", "DAAParams", "Fallback", "KnobRanges", "Knobs",
    "params_for", "sample_params", "PromptError", "from_prompt",
]  # fmt: skip
