"""Restricted unpickling of ScenarioNet scenario-description files (`*.pkl`).

A pickle can run arbitrary code on load: every global it references is resolved through
`Unpickler.find_class`, and a malicious file names e.g. `os.system` there. `SafeUnpickler`
resolves only the globals a scenario description needs (checked on the nuScenes, Waymo
and nuPlan conversions): numpy array reconstruction (`numpy.core.multiarray._reconstruct`
and its numpy 2 home `numpy._core.multiarray`; `...numeric._frombuffer` for protocol 5), `numpy.ndarray`, `numpy.dtype`, numpy
scalars (`...multiarray.scalar`), `collections.defaultdict` and plain builtin container
and value types (plus `_codecs.encode` restricted to latin1, which protocol-2 pickles use
to store bytes such as array data). Anything else raises `UnsafePickleError` naming the module and global,
before the referenced object is even imported, so nothing in the file runs.
"""

from __future__ import annotations

import builtins
import collections
import io
import os
import pickle

import numpy as np

_NUMPY_MULTIARRAY = ("numpy.core.multiarray", "numpy._core.multiarray")
_NUMPY_GLOBALS = {"_reconstruct", "scalar"}
_BUILTINS = {
    "dict",
    "list",
    "tuple",
    "set",
    "frozenset",
    "int",
    "float",
    "complex",
    "str",
    "bytes",
    "bytearray",
    "bool",
    "slice",
    "range",
}
MAX_FILE_BYTES = 2 << 30  # a scene is a few MB; refuse absurd inputs before reading them


def _latin1_encode(text, encoding="utf-8", errors="strict"):
    """`_codecs.encode` as protocol-2 pickles use it for bytes (text, 'latin1'); no other codec."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str) or errors != "strict":
        raise pickle.UnpicklingError(f"refused _codecs.encode(..., {encoding!r}, {errors!r}): only latin1 is allowed")
    return text.encode("latin1")


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references a global outside the allow-list (named in the message)."""


def _numpy_multiarray(name: str):
    try:  # numpy >= 2 keeps the implementation in numpy._core
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    return getattr(multiarray, name)


def _numpy_frombuffer():
    try:
        from numpy._core import numeric
    except ImportError:
        from numpy.core import numeric
    return numeric._frombuffer


class SafeUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` resolving only the allow-listed globals (see the module doc)."""

    source = "<pickle>"

    def find_class(self, module: str, name: str):
        if module in _NUMPY_MULTIARRAY and name in _NUMPY_GLOBALS:
            return _numpy_multiarray(name)
        if module in ("numpy.core.numeric", "numpy._core.numeric") and name == "_frombuffer":  # protocol 5
            return _numpy_frombuffer()
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module == "numpy" and name in ("float64", "float32", "int64", "int32", "bool_"):
            return getattr(np, name)
        if module in ("collections", "_collections") and name == "defaultdict":
            return collections.defaultdict
        if module == "_codecs" and name == "encode":  # bytes in protocol-2 pickles (numpy array data)
            return _latin1_encode
        if module in ("builtins", "__builtin__") and name in _BUILTINS:
            return getattr(builtins, name)
        raise UnsafePickleError(
            f"{self.source}: refused to load global '{module}.{name}' (a scenario description may reference "
            "only numpy arrays/dtypes/scalars, collections.defaultdict and builtin types; a pickle that names "
            "anything else could run code on load)"
        )

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.source}: refused persistent id {pid!r} (not used by scenario descriptions)")


def safe_loads(data: bytes, source: str = "<bytes>"):
    """Unpickle `data` with `SafeUnpickler`; errors name `source`."""
    up = SafeUnpickler(io.BytesIO(data))
    up.source = source
    try:
        return up.load()
    except UnsafePickleError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        MemoryError,
        UnicodeDecodeError,
    ) as err:
        raise pickle.UnpicklingError(f"{source}: not a readable pickle ({type(err).__name__}: {err})") from None


def safe_load(path: str | os.PathLike):
    """Load one `.pkl` file with `SafeUnpickler` (errors name the file)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"scenario file not found: {path}")
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{path}: {size} bytes, larger than the {MAX_FILE_BYTES} accepted for one scenario")
    with open(path, "rb") as fh:
        return safe_loads(fh.read(), path)
