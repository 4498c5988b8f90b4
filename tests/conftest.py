import atexit
import os
import shutil
import sys
import tempfile

# Tests run on the CPU with small shapes; keep XLA from grabbing every core per process.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
sys.path.insert(0, os.path.dirname(__file__))
# One persistent XLA compilation cache per test run, shared by the xdist workers and the
# subprocesses the tests start (they inherit the variable): many tests compile the same
# env/learner programs, and compiling is most of a CPU test's time. Results are unchanged:
# a hit loads the executable the miss compiled.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="reconrl-tests-jax-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    # files with long end-to-end tests (marked slow) first, so that no worker starts one
    # when the other has run out of work; whole files move, so module-scoped fixtures are
    # still built once per worker; otherwise collection order
    slow_files = {item.path for item in items if "slow" in item.keywords}
    items.sort(key=lambda item: item.path not in slow_files)
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # torch missing or broken: no GPU tests either way
        has_cuda = False
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run on the GPU machine)")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip)
