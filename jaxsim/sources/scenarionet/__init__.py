"""ScenarioNet scenario descriptions as a scenario source: one importer for what MetaDrive
and ScenarioNet users hold for nuScenes, Waymo, nuPlan, Argoverse 2 and Lyft.

    from jaxsim.sources.scenarionet import import_scenarionet
    bank, report = import_scenarionet(["scenes/"])   # .pkl files or folders of them

or `reconrl scenarios import-scenarionet INPUT... --out bank.npz`.

Modules: unpickle (restricted unpickler: numpy arrays, defaultdict, builtins only),
schema (validation naming file and key), convert (scene dict -> the nuScenes importer's
SceneLog and MapData: smoothed SDC track, agents, lanes, drivable polygons), importer
(files -> clips via `nuscenes.clips.make_clip` -> bank arrays and a per-scene report).
"""

from jaxsim.sources.scenarionet.importer import find_files, import_arrays, import_scenarionet
from jaxsim.sources.scenarionet.schema import ScenarioNetFormatError
from jaxsim.sources.scenarionet.unpickle import SafeUnpickler, UnsafePickleError, safe_load, safe_loads

__all__ = [
    "import_scenarionet",
    "import_arrays",
    "find_files",
    "ScenarioNetFormatError",
    "SafeUnpickler",
    "UnsafePickleError",
    "safe_load",
    "safe_loads",
]
