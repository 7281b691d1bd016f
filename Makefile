# Two commands on a fresh clone (needs only python3 >= 3.10 and the package registry):
#   make repro   set up .venv and run the whole DVC pipeline on the offline default
#   make test    set up .venv and run the test suite (what .ci/run calls)
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export DVC_NO_ANALYTICS := 1
export NO_ALBUMENTATIONS_UPDATE := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup repro test clean

# The headline of `dvc metrics show` (the full table is wide: run it yourself).
define SUMMARY
import json, sys
for path, m in json.load(sys.stdin)[""]["data"].items():
    d = m.get("data", {})
    if "accuracy" in d:
        print(f"{path}: test accuracy {d['accuracy']:.4f}, macro-F1 {d['macro_f1']:.4f} on {d['test_samples']} test images")
endef
export SUMMARY

# pip's own lines show the install going (it is minutes of downloads the first time).
$(STAMP): pyproject.toml
	@echo "installing into $(VENV) (about 3 minutes the first time)"
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar on -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

repro: $(STAMP)
	$(BIN)/dvc repro
	@$(BIN)/dvc metrics show --json | $(BIN)/python -c "$$SUMMARY"

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
