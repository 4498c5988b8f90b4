"""Save and load a ScenarioBank as one versioned `.npz` file.

Layout: every `Scenario` field stored under its own name with a leading N axis, plus
`__format__` (the string FORMAT_NAME) and `__version__` (int). Loading checks all of
it, then the physical sense of the numbers (`jaxsim.bank_checks`: time step, sizes,
speeds, lane indices, coordinates within a stated bound), and raises
`ScenarioFormatError` naming the file, the scene index and the offending field.
"""

from __future__ import annotations

import os
import zipfile
import zlib

import numpy as np

from jaxsim.bank_checks import check_bank_physics
from jaxsim.io_utils import atomic_write
from jaxsim.scenario import FIELD_SPECS, Scenario, ScenarioFormatError, from_numpy, to_numpy, validate_arrays

FORMAT_NAME = "recondreamer-rl-jax/scenario-bank"
FORMAT_VERSION = 1


def save_bank(path: str | os.PathLike, bank: Scenario) -> None:
    """Write `bank` (leading N axis) to `path`, atomically (temp file + rename)."""
    arrays = to_numpy(bank)
    validate_arrays(arrays, batched=True)
    with atomic_write(path, "wb", suffix=".npz") as f:  # checks the path; temp removed on failure
        np.savez_compressed(f, __format__=np.array(FORMAT_NAME), __version__=np.array(FORMAT_VERSION), **arrays)


def load_bank(path: str | os.PathLike) -> Scenario:
    """Read and validate a bank written by `save_bank`."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"scenario bank file not found: {path}")
    if os.path.isdir(path):
        raise ScenarioFormatError(f"{path}: a directory, not a .npz scenario bank file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip (an empty one: end-of-archive record)
        raise ScenarioFormatError(f"{path}: not a .npz scenario bank (no zip signature; first bytes {magic!r})")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ScenarioFormatError(f"{path}: a single .npy array, not a .npz scenario bank")
        with data:
            contents = {k: data[k] for k in data.files}
    except ScenarioFormatError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error, KeyError, TypeError) as err:
        raise ScenarioFormatError(f"{path}: not a readable .npz scenario bank ({type(err).__name__}: {err})") from None
    fmt = contents.pop("__format__", None)
    if fmt is None or fmt.shape != () or str(fmt) != FORMAT_NAME:
        raise ScenarioFormatError(f"{path}: field '__format__' is {fmt!r}, expected '{FORMAT_NAME}'")
    version = contents.pop("__version__", None)
    try:
        version_ok = version is not None and version.shape == () and int(version) == FORMAT_VERSION
    except (TypeError, ValueError):
        version_ok = False
    if not version_ok:
        raise ScenarioFormatError(f"{path}: field '__version__' is {version!r}, this reader supports {FORMAT_VERSION}")
    try:
        validate_arrays(contents, batched=True)
        check_bank_physics(contents)
        return from_numpy(contents, batched=True)
    except ScenarioFormatError as err:
        raise ScenarioFormatError(f"{path}: {err}") from None


__all__ = ["save_bank", "load_bank", "FORMAT_NAME", "FORMAT_VERSION", "FIELD_SPECS"]
