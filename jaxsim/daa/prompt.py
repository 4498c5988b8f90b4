"""Text prompts -> DAAParams through a small, documented keyword grammar.

    from_prompt("A vehicle on the right cuts in front of the ego vehicle, while other
                 vehicles maintain their original trajectories")
    -> cut_in_right, moderate intensity

Grammar (case-insensitive; punctuation ignored; one adversary per prompt):
  tail       A clause about the *other* vehicles ("while other vehicles ...",
             "and other vehicles ...", "the rest ...") is ignored: they replay their logs.
  behaviour  exactly one of
               cut_in       "cut in", "cuts in", "cutting in", "cut-in", "cuts into"
               merge        "merge(s)", "merging", "ramp", "on-ramp"
               hard_brake   "brake(s)", "braking", "hard brake", "decelerates", "stops suddenly"
               lane_change  "lane change", "changes lane(s)", "changing lanes", "swerve(s)"
               keep_log     "maintain", "keeps", "original", "normal", "no adversary"
  side       "left" or "right": required for cut_in; merges come from the right; a lane
             change takes the nearest neighbour lane, so its side is not needed.
  intensity  mild ("gently", "slowly", "mild", "cautiously", "gradually"),
             moderate (default, "moderate"), aggressive ("aggressive(ly)", "sudden(ly)",
             "abrupt(ly)", "sharp(ly)", "hard" (not in "hard brake"), "dangerous(ly)",
             "emergency"). Intensity sets every knob at 15 / 50 / 90 % of its range
             toward danger (shorter gaps and durations, stronger braking, slower end speed).
A prompt without a behaviour, with two behaviours, or a cut-in without a side raises
`PromptError`, whose message lists this vocabulary.

Refused as well (the grammar has no negation, so guessing would do the opposite of what
was asked):
  negation       "not", "n't", "no" (except the phrase "no adversary"), "never",
                 "without", "nor", "none", "neither" outside the ignored tail clause:
                 "a vehicle on the right does not cut in" is an error, not a cut-in.
  contradiction  "no adversary" together with a behaviour ("no adversary, a car merges").
  length         prompts longer than MAX_PROMPT_CHARS characters.
Parsing is linear in the prompt length (word scans and backtracking-free patterns).
"""

from __future__ import annotations

import re

from jaxsim.config_utils import ConfigError
from jaxsim.daa.params import KNOB_NAMES, Behaviour, DAAConfig, DAAParams, Knobs, params_for

BEHAVIOUR_WORDS = {
    "cut_in": (r"cut(s|ting)? ?in(to)?\b",),
    "merge": (r"\bmerg(e|es|ing)\b", r"\b(on )?ramp\b"),
    "hard_brake": (r"\bbrak(e|es|ing)\b", r"\bdecelerat", r"\bstops? suddenly\b", r"\bemergency stop\b"),
    "lane_change": (r"\blane change\b", r"\bchang(es|ing) lanes?\b", r"\bswerv(e|es|ing)\b"),
    "keep_log": (r"\bmaintain", r"\bkeeps?\b", r"\boriginal\b", r"\bnormal(ly)?\b", r"\bno adversary\b"),
}
INTENSITY_WORDS = {
    "mild": (r"\bgentl[ey]\b", r"\bslow(ly)?\b", r"\bmild(ly)?\b", r"\bcautious(ly)?\b", r"\bgradual(ly)?\b"),
    "aggressive": (
        r"\baggressive(ly)?\b",
        r"\bsudden(ly)?\b",
        r"\babrupt(ly)?\b",
        r"\bsharp(ly)?\b",
        r"\bhard\b(?! ?brak)",
        r"\bdangerous(ly)?\b",
        r"\bemergency\b",
    ),  # fmt: skip
    "moderate": (r"\bmoderate(ly)?\b",),
}
INTENSITY_LEVEL = {"mild": 0.15, "moderate": 0.5, "aggressive": 0.9}
# +1: a larger value is more dangerous; -1: a smaller one is
DANGER = {"trigger_gap": -1, "trigger_ttc": -1, "lat_duration": -1, "final_gap": -1, "decel": 1, "speed_offset": -1}
MAX_PROMPT_CHARS = 1000
TAIL_CONJUNCTIONS = frozenset({"while", "and", "but", "whereas"})
TAIL_SUBJECTS = frozenset({"other", "rest", "remaining"})
NEGATIONS = frozenset({"not", "no", "never", "without", "nor", "none", "neither", "nobody", "nothing",
                       "cannot", "dont", "doesnt", "didnt", "isnt", "wont", "arent", "shouldnt"})  # fmt: skip


class PromptError(ConfigError):
    """A prompt the grammar cannot map to one DAA behaviour."""


HELP = {
    "cut_in": "cut in, cuts in, cutting in, cut-in, cuts into",
    "merge": "merge(s), merging, ramp, on-ramp",
    "hard_brake": "brake(s), braking, hard brake, decelerates, stops suddenly",
    "lane_change": "lane change, changes lane(s), changing lanes, swerve(s)",
    "keep_log": "maintain, keep(s), original, normal, no adversary",
    "mild": "gently, slowly, mild, cautiously, gradually",
    "moderate": "moderate (the default)",
    "aggressive": "aggressive(ly), sudden(ly), abrupt(ly), sharp(ly), hard, dangerous(ly), emergency",
}


def vocabulary() -> str:
    beh = "; ".join(f"{k}: {HELP[k]}" for k in BEHAVIOUR_WORDS)
    inten = "; ".join(f"{k}: {HELP[k]}" for k in INTENSITY_LEVEL)
    return f"behaviours ({beh}); sides (left, right: required for cut_in); intensities ({inten})"


def _found(patterns, text) -> bool:
    return any(re.search(p, text) for p in patterns)


def strip_tail(words: list[str]) -> list[str]:
    """Drop the clause about the other vehicles: from the first conjunction that has one of
    TAIL_SUBJECTS after it, or from "the other/rest/remaining", whichever comes first.
    One pass over the words (linear)."""
    last_subject = max((k for k, w in enumerate(words) if w in TAIL_SUBJECTS), default=-1)
    for j, w in enumerate(words):
        if (w in TAIL_CONJUNCTIONS and j < last_subject) or (
            w == "the" and j + 1 < len(words) and words[j + 1] in TAIL_SUBJECTS
        ):
            return words[:j]
    return words


def _words(text: str) -> list[str]:
    """Lower-case words of a prompt, apostrophes folded ("doesn't" -> "doesnt"), hyphens split."""
    folded = text.lower().replace("\u2019", "'").replace("'", "")
    return re.sub(r"[^a-z ]+", " ", folded.replace("-", " ")).split()


def _short(text: str) -> str:
    return repr(text) if len(text) <= 120 else repr(text[:100] + "...") + f" ({len(text)} characters)"


def parse_prompt(text: str) -> tuple[Behaviour, str]:
    """(Behaviour, intensity name) for a prompt; raises PromptError (see module docstring)."""
    if not isinstance(text, str) or not text.strip():
        raise PromptError(f"empty prompt; the DAA grammar understands {vocabulary()}")
    if len(text) > MAX_PROMPT_CHARS:
        raise PromptError(f"prompt of {len(text)} characters is longer than the limit of {MAX_PROMPT_CHARS}; "
                          f"describe one adversary in a sentence")  # fmt: skip
    words = strip_tail(_words(text))
    clean = " ".join(words)
    negated = [
        w for k, w in enumerate(words) if w in NEGATIONS and not (w == "no" and words[k + 1 : k + 2] == ["adversary"])
    ]
    if negated:
        raise PromptError(f"prompt {_short(text)} contains a negation ({', '.join(repr(w) for w in negated)}), which the "
                          f"grammar does not understand: say what the adversary does, or 'no adversary' for log "
                          f"replay. The grammar understands {vocabulary()}")  # fmt: skip
    hits = [name for name, pats in BEHAVIOUR_WORDS.items() if _found(pats, clean)]
    acting = [h for h in hits if h != "keep_log"]
    if acting and re.search(r"\bno adversary\b", clean):
        raise PromptError(f"prompt {_short(text)} is contradictory: it says 'no adversary' and also {acting}; give "
                          f"one. The grammar understands {vocabulary()}")  # fmt: skip
    if len(acting) > 1:
        raise PromptError(
            f"prompt {_short(text)} names several behaviours {acting}; give one. The grammar understands {vocabulary()}"
        )
    if not hits:
        raise PromptError(
            f"cannot parse prompt {_short(text)}: it names no behaviour. The grammar understands {vocabulary()}"
        )
    name = acting[0] if acting else "keep_log"
    left, right = bool(re.search(r"\bleft\b", clean)), bool(re.search(r"\bright\b", clean))
    if name == "cut_in":
        if left == right:
            raise PromptError(
                f"prompt {_short(text)}: a cut-in needs exactly one side, 'left' or 'right'. The grammar understands {vocabulary()}"
            )
        behaviour = Behaviour.CUT_IN_LEFT if left else Behaviour.CUT_IN_RIGHT
    else:
        behaviour = Behaviour[name.upper()]
    levels = [k for k, pats in INTENSITY_WORDS.items() if _found(pats, clean)]
    if len(levels) > 1:
        raise PromptError(
            f"prompt {_short(text)} mixes intensities {levels}; give one. The grammar understands {vocabulary()}"
        )
    return behaviour, (levels[0] if levels else "moderate")


def knobs_for(behaviour: Behaviour, intensity: str, config: DAAConfig = DAAConfig()) -> Knobs:
    """Knob values at the intensity's fraction of the behaviour's ranges, toward danger."""
    f = INTENSITY_LEVEL[intensity]
    fam = config.family(int(behaviour))
    vals = {}
    for k in KNOB_NAMES:
        lo, hi = getattr(fam, k)
        frac = f if DANGER[k] > 0 else 1.0 - f
        vals[k] = float(lo + frac * (hi - lo))
    return Knobs(**vals)


def from_prompt(text: str, config: DAAConfig = DAAConfig()) -> DAAParams:
    """Enabled DAAParams (one env) for a prompt; resampling ranges come from `config`."""
    behaviour, intensity = parse_prompt(text)
    return params_for(int(behaviour), knobs_for(behaviour, intensity, config), config)
