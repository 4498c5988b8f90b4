"""Save and load a ScenarioBank as one versioned `.npz` file.

Layout: every `Scenario` field stored under its own name with a leading N axis, plus
`__format__` (the string FORMAT_NAME) and `__version__` (int). Loading checks all of
it and raises `ScenarioFormatError` naming the offending field.
"""
from __future__ import annotations

import os
import zipfile

import numpy as np

from jaxsim.scenario import FIELD_SPECS, Scenario, ScenarioFormatError, from_numpy, to_numpy, validate_arrays

FORMAT_NAME = "recondreamer-rl-jax/scenario-bank"
FORMAT_VERSION = 1


def save_bank(path: str | os.PathLike, bank: Scenario) -> None:
    """Write `bank` (leading N axis) to `path`, atomically (temp file + rename)."""
    arrays = to_numpy(bank)
    validate_arrays(arrays, batched=True)
    path = os.fspath(path)
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, __format__=np.array(FORMAT_NAME), __version__=np.array(FORMAT_VERSION), **arrays)
    os.replace(tmp, path)


def load_bank(path: str | os.PathLike) -> Scenario:
    """Read and validate a bank written by `save_bank`."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"scenario bank file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            contents = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise ScenarioFormatError(f"{path}: not a readable .npz scenario bank ({err})") from err
    fmt = contents.pop("__format__", None)
    if fmt is None or str(fmt) != FORMAT_NAME:
        raise ScenarioFormatError(f"{path}: field '__format__' is {fmt!r}, expected '{FORMAT_NAME}'")
    version = contents.pop("__version__", None)
    if version is None or int(version) != FORMAT_VERSION:
        raise ScenarioFormatError(f"{path}: field '__version__' is {version!r}, this reader supports {FORMAT_VERSION}")
    try:
        return from_numpy(contents, batched=True)
    except ScenarioFormatError as err:
        raise ScenarioFormatError(f"{path}: {err}") from err


__all__ = ["save_bank", "load_bank", "FORMAT_NAME", "FORMAT_VERSION", "FIELD_SPECS"]
