"""Bad input: DAA prompts with negation, contradiction or absurd length (issue 18, finding 6)."""

import time

import pytest

from jaxsim.daa import prompt as pr
from jaxsim.daa.params import Behaviour


@pytest.mark.parametrize(
    "text, needle",
    [
        ("a vehicle on the right does not cut in", "negation"),
        ("a vehicle on the right doesn't cut in", "negation"),
        ("a vehicle on the right doesn\u2019t cut in", "negation"),
        ("the lead car never brakes", "negation"),
        ("a car merges without braking", "negation"),
        ("no vehicle changes lanes", "negation"),
        ("no adversary, a car merges", "contradictory"),
        ("No adversary; the lead car brakes hard", "contradictory"),
    ],
)
def test_negation_and_contradiction_are_refused(text, needle):
    with pytest.raises(pr.PromptError) as err:
        pr.parse_prompt(text)
    msg = str(err.value)
    assert needle in msg and "no adversary" in msg and "cut_in" in msg  # says what to write instead


def test_affirmative_prompts_and_negated_tail_still_parse():
    assert pr.parse_prompt("no adversary") == (Behaviour.KEEP_LOG, "moderate")
    # a negation inside the ignored clause about the other vehicles is fine
    text = "a vehicle on the left cuts in, while the other vehicles do not react"
    assert pr.parse_prompt(text) == (Behaviour.CUT_IN_LEFT, "moderate")
    assert pr.parse_prompt("a car on the right cuts in and other cars keep going") == (
        Behaviour.CUT_IN_RIGHT,
        "moderate",
    )


def test_length_limit_named():
    with pytest.raises(pr.PromptError, match=f"limit of {pr.MAX_PROMPT_CHARS}"):
        pr.parse_prompt("a car brakes " * 1000)


def test_parsing_is_linear_in_length():
    """The old tail regex backtracked (100k characters took 13 s): the word scan must not."""
    words = ("and the car goes " * 60_000).split() + ["other"]  # ~1M characters worth of words

    def timed(n):
        t = time.perf_counter()
        pr.strip_tail(words[:n] + ["other"])
        pr._words(" ".join(words[:n]))
        return time.perf_counter() - t

    small, big = timed(24_000), timed(240_000)
    assert big < 2.0 and big < 40 * max(small, 1e-3)  # 10x the input, far from 100x the time
    longest = "a car on the right cuts in " + "and " * ((pr.MAX_PROMPT_CHARS - 40) // 4)
    t = time.perf_counter()
    assert pr.parse_prompt(longest[: pr.MAX_PROMPT_CHARS])[0] == Behaviour.CUT_IN_RIGHT
    assert time.perf_counter() - t < 0.5
