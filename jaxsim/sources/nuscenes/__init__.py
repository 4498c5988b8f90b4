"""nuScenes driving logs as a scenario source (reads the JSON tables; devkit optional).

    from jaxsim.sources.nuscenes import ImportConfig, import_nuscenes
    bank, summary = import_nuscenes("/data/sets/nuscenes", "v1.0-mini")

or `reconrl scenarios import-nuscenes --dataroot DIR --version v1.0-mini --out bank.npz`.

Modules: tables (metadata JSON), maps + arcline (map expansion: lanes, lane graph,
drivable area), timeline (scene -> uniform 10 Hz ego + agent tracks), ego (bicycle-
consistent expert), lanes (lane slots of a clip), clips (one Scenario clip), importer
(the bank). nuscenes-devkit (numpy<2 pin) is used only with use_devkit=True / --devkit,
imported lazily (devkit.py).
"""

from jaxsim.sources.nuscenes.config import ImportConfig
from jaxsim.sources.nuscenes.importer import import_arrays, import_nuscenes

__all__ = ["ImportConfig", "import_nuscenes", "import_arrays"]
