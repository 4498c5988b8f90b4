"""Config validation: unknown keys and bad values are named; nested defaults survive."""

import dataclasses

import pytest

from jaxsim.config_utils import ConfigError, apply_overrides, dataclass_from_dict


@dataclasses.dataclass(frozen=True)
class Inner:
    lr: float = 0.1
    steps: int = 10


@dataclasses.dataclass(frozen=True)
class Outer:
    name: str = "x"
    inner: Inner = Inner(lr=0.5, steps=3)
    flag: bool = False


def test_partial_nested_section_keeps_the_parent_defaults():
    cfg = dataclass_from_dict(Outer, {"inner": {"steps": 7}})
    assert cfg.inner == Inner(lr=0.5, steps=7)


def test_yaml_exponent_strings_become_floats():
    data = apply_overrides({}, ["inner.lr=1e-4", "flag=true"])
    cfg = dataclass_from_dict(Outer, data)
    assert cfg.inner.lr == pytest.approx(1e-4) and cfg.flag is True


@pytest.mark.parametrize(
    "data, match",
    [
        ({"nmae": "y"}, "nmae"),
        ({"inner": {"lr": "fast"}}, "inner.lr"),
        ({"flag": 1}, "flag"),
        ({"inner": {"steps": 1.5}}, "inner.steps"),
    ],
)
def test_bad_keys_and_values_are_named(data, match):
    with pytest.raises(ConfigError, match=match):
        dataclass_from_dict(Outer, data)


def test_override_syntax_is_checked():
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["inner.lr"])
