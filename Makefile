# Two commands do all set-up on a fresh machine (see README):
#   make run   -> install, then train + evaluate on the embedded procedural default
#   make test  -> install, then run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU machines: torch==2.13.0 resolves to a local CPU wheel; a bare `torch` requirement
# would pull several GB of CUDA packages. GPU machines keep the torch they have.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install run test bench-sim clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test,video,lint]"
	touch $@

run: install
	$(VENV)/bin/reconrl train

# Two workers (pytest-xdist): 216 s -> 175 s on a sample of six test files on a busy
# 2-core machine (load ~6 from other jobs); more on a quiet one.
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest -q -p no:cacheprovider -n 2

bench-sim: install
	$(VENV)/bin/reconrl bench sim --json benchmarks/sim.json

clean:
	rm -rf $(VENV) *.egg-info
