"""Validation helpers for static configs: errors name the field and what is allowed."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np


class ConfigError(ValueError):
    """A configuration key is unknown or its value is out of range."""


def check_choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"'{name}' is {value!r}; allowed values: {', '.join(map(repr, allowed))}")


def check_range(name: str, value: Any, lo: float | None = None, hi: float | None = None) -> None:
    """Raise ConfigError unless `value` is a finite number in [lo, hi] (None: unbounded).

    NaN and +-inf are always rejected: NaN compares false with every bound, so a plain
    `lo <= value <= hi` test would let it through.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"'{name}' must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"'{name}' is {value!r}; it must be a finite number in [{lo}, {hi}]")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"'{name}' is {value!r}; allowed range: [{lo}, {hi}]")


def check_finite(name: str, value: Any) -> None:
    """Raise ConfigError if a number (or every element of a sequence) is NaN or inf."""
    for v in value if isinstance(value, (list, tuple)) else (value,):
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and not math.isfinite(v):
            raise ConfigError(f"'{name}' is {value!r}; it must be finite (no NaN or inf)")


def dataclass_from_dict(cls, data: dict, prefix: str = "", base=None):
    """Build a (possibly nested) dataclass from a dict, rejecting unknown keys by name.

    Keys not given keep their value in `base` (default: `cls()`), also inside nested
    sections; values are cast to the default's type where that is unambiguous
    (int -> float, list -> tuple).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"'{prefix.rstrip('.') or cls.__name__}' must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {[prefix + k for k in unknown]}; allowed keys under '{prefix.rstrip('.') or 'top level'}': {sorted(fields)}"
        )
    kwargs = {}
    defaults = cls() if base is None else base
    for name, value in data.items():
        default = getattr(defaults, name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = dataclass_from_dict(type(default), value, prefix + name + ".", base=default)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"'{prefix + name}' must be true or false, got {value!r}")
            kwargs[name] = value
        elif isinstance(default, float) and isinstance(value, (int, float, str)) and not isinstance(value, bool):
            kwargs[name] = _as_float(value, prefix + name)
        elif isinstance(default, tuple) and isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            if default is not None and not isinstance(value, type(default)):
                raise ConfigError(f"'{prefix + name}' must be {type(default).__name__}, got {value!r}")
            kwargs[name] = value
    try:
        out = dataclasses.replace(defaults, **kwargs)
    except ConfigError as err:
        msg = str(err)
        if prefix and not msg.startswith("'" + prefix):  # name the key with its section
            msg = "'" + prefix + msg[1:] if msg.startswith("'") else prefix + msg
        raise ConfigError(msg) from err
    for name, value in kwargs.items():  # keys without a range check: still no NaN/inf
        if not dataclasses.is_dataclass(value):
            check_finite(prefix + name, value)
    return out


def _as_float(value, name: str) -> float:
    """YAML 1.1 reads `1e-4` (no dot) as a string: accept numeric strings for float keys.

    Non-finite values pass through here; `dataclass_from_dict` refuses them after the
    section's own range checks (whose message states the allowed range) have run.
    """
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"'{name}' must be a number, got {value!r}") from None


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `key.sub=value` strings (values parsed as YAML scalars) to a nested dict."""
    import yaml

    out = dict(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. ppo.lr=3e-4)")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {key!r}: '{part}' is not a section")
            node[part] = dict(child)
            node = node[part]
        node[parts[-1]] = value
    return out
