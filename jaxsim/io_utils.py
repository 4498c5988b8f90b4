"""Safe output files: paths checked before work starts, atomic writes, strict JSON.

    check_output_file(args.json, "--json")   # before a long computation
    write_json(path, results)                 # temp file in the same folder + rename

`atomic_write(path)` yields a temp file next to `path` (same folder, so the rename is
atomic on POSIX) and renames it over `path` only when the block finishes; on any error
the temp file is removed and `path` is left as it was. `to_json_safe` turns NaN/inf
into `null` so every JSON we write parses with strict readers (Python's `json`, `jq`,
JavaScript); numpy scalars and arrays become plain numbers and lists.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile


class OutputPathError(ValueError):
    """An output path cannot be written (a directory, a missing or read-only folder)."""


def check_output_file(path, what: str = "output file", create_parent: bool = False) -> str:
    """Raise OutputPathError unless `path` can be created or replaced as a regular file.

    Checks: not an existing directory, the parent folder exists and is writable (a
    replace-by-rename needs only the folder). With `create_parent`, a missing parent is
    fine if it can be created (the caller makes it). Returns the path as a string.
    """
    if path is None or str(path).strip() == "":
        raise OutputPathError(f"{what}: empty path")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise OutputPathError(f"{what} {path!r} is an existing directory; give a file path")
    parent = os.path.dirname(os.path.abspath(path))
    if create_parent and not os.path.exists(parent):
        check_output_dir(parent, f"folder of {what} {path!r}")
        return path
    if not os.path.isdir(parent):
        if os.path.exists(parent):
            raise OutputPathError(f"{what} {path!r}: {parent!r} is not a directory")
        raise OutputPathError(f"{what} {path!r}: folder {parent!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {path!r}: folder {parent!r} is not writable")
    return path


def check_output_dir(path, what: str = "output directory") -> str:
    """Raise OutputPathError unless `path` is (or can be created as) a writable directory."""
    if path is None or str(path).strip() == "":
        raise OutputPathError(f"{what}: empty path")
    path = os.fspath(path)
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise OutputPathError(f"{what} {path!r} is an existing file, not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputPathError(f"{what} {path!r} is not writable")
        return path
    # the nearest existing ancestor must be a writable directory
    anc = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(anc):
        anc = os.path.dirname(anc)
    if not os.path.isdir(anc):
        raise OutputPathError(f"{what} {path!r}: {anc!r} is a file, not a directory")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {path!r}: folder {anc!r} is not writable")
    return path


@contextlib.contextmanager
def atomic_write(path, mode: str = "w", suffix: str = ""):
    """Yield a file object for a temp file beside `path`; rename it over `path` on success.

    `suffix` is appended to the temp name (numpy's savez wants names ending '.npz').
    The temp file is removed on any exception, and the exception propagates.
    """
    path = check_output_file(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp" + suffix, dir=folder)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600: give the usual permissions
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def to_json_safe(obj):
    """A copy of `obj` with NaN/inf as None and numpy values as Python ones (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): to_json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_safe(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if hasattr(obj, "tolist"):  # numpy / jax arrays and scalars
        return to_json_safe(obj.tolist())
    try:
        return to_json_safe(float(obj))
    except (TypeError, ValueError):
        return str(obj)


def dumps_json(obj, **kwargs) -> str:
    """`json.dumps` of `to_json_safe(obj)`, refusing any bare NaN (allow_nan=False)."""
    return json.dumps(to_json_safe(obj), allow_nan=False, **kwargs)


def write_json(path, obj, indent: int = 2) -> None:
    """Write `obj` as strict JSON (NaN/inf -> null) to `path`, atomically."""
    text = dumps_json(obj, indent=indent)
    with atomic_write(path) as f:
        f.write(text + "\n")


def write_text(path, text: str) -> None:
    """Write `text` to `path`, atomically."""
    with atomic_write(path) as f:
        f.write(text)
