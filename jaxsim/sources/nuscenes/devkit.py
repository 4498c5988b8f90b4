"""Optional path through the official nuscenes-devkit (imported lazily).

The devkit pins numpy<2, so it cannot live in the project's main environment (jax 0.10,
numpy 2); install it in a separate numpy-1 environment (jax 0.7.1 runs there) to use
it. It yields the same raw records as the JSON reader (plus its reverse-index keys),
so the conversion is identical; its value is the devkit's own validation of the files.
"""

from __future__ import annotations

from jaxsim.sources.nuscenes.tables import OPTIONAL, REQUIRED


def devkit_available() -> bool:
    try:
        import nuscenes.nuscenes  # noqa: F401
    except Exception:  # ImportError, or a numpy ABI error when the pins do not match
        return False
    return True


def _import_devkit():
    try:
        from nuscenes.nuscenes import NuScenes
    except Exception as err:
        raise ValueError(
            "use_devkit=True (--devkit) needs nuscenes-devkit, which is not importable here "
            f"({type(err).__name__}: {err}); it pins numpy<2, so install it in a separate numpy-1 environment, "
            "or drop --devkit to read the JSON tables directly"
        ) from err
    return NuScenes


def devkit_records(dataroot: str, version: str) -> dict:
    """Table name -> list of records, loaded by `nuscenes.nuscenes.NuScenes`."""
    NuScenes = _import_devkit()
    nusc = NuScenes(version=version, dataroot=dataroot, verbose=False)
    return {name: list(getattr(nusc, name, [])) for name in REQUIRED + OPTIONAL}


def devkit_map_json(dataroot: str, location: str) -> dict:
    """Raw map-expansion JSON as loaded by `NuScenesMap` (which checks the map version)."""
    try:
        from nuscenes.map_expansion.map_api import NuScenesMap
    except Exception as err:
        raise ValueError(f"--devkit needs nuscenes.map_expansion, which is not importable here ({err})") from err
    return NuScenesMap(dataroot=dataroot, map_name=location).json_obj
