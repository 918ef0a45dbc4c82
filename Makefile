# Two entry points for a fresh machine: `make study` and `make test`.
# Both create .venv and install everything they need (system fonts/word lists and
# Chromium with apt when it is available, then the exact versions of requirements.lock,
# the CPU torch among them, then the project). `make lock` regenerates the lock.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Exact versions and hashes of every Python package `make setup` installs, compiled from
# pyproject.toml and lock-pins.in (torch 2.13.0 CPU, pip, setuptools) by `make lock`.
LOCK := requirements.lock
PIP_TOOLS_VERSION := 7.7.0
RESULTS ?= results/quick
# Every name exists in Debian 12 (bookworm). Fonts and word lists feed synth-* (see
# afdm_lib/data/synth.py); libraqm0 + libfribidi0 give Pillow complex-script shaping.
APT_PACKAGES := fontconfig fonts-dejavu-core fonts-noto-core \
  fonts-lohit-beng-bengali fonts-lohit-beng-assamese fonts-beng-extra \
  fonts-lohit-deva fonts-lohit-deva-marathi fonts-lohit-deva-nepali fonts-deva-extra \
  fonts-samyak-deva fonts-sarai fonts-gargi fonts-nakula fonts-sahadeva fonts-aksharyogini2 \
  fonts-comic-neue fonts-dancingscript fonts-breip fonts-kristi fonts-sil-andika \
  fonts-dkg-handwriting fonts-klee fonts-rufscript fonts-kaushanscript fonts-ecolier-court \
  fonts-urw-base35 wamerican hunspell-bn hunspell-hi libfribidi0 libraqm0 \
  chromium chromium-driver

.PHONY: setup system venv test study quick cpu ablation capacity book bench lint lock clean

setup: system $(BIN)/afdm

# System packages: fonts for the synthetic script words, word lists, Raqm, Chromium.
# Skipped (with a message) when apt is not available or we are not root.
system: .system-stamp
.system-stamp:
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq || true) && \
	  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      $(APT_PACKAGES) >/dev/null 2>&1; then \
	    for p in $(APT_PACKAGES); do \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$p >/dev/null 2>&1 \
	        || echo "make: apt could not install $$p (the features needing it will say so)"; \
	    done; \
	  fi; \
	else \
	  echo "make: apt-get not available or not root: install fonts, word lists and chromium by hand (see README)"; \
	fi
	@touch .system-stamp

# The lock holds every dependency with its hashes (pip refuses anything else); the project
# itself then goes in without dependencies and without build isolation, which would
# fetch an unpinned setuptools.
$(BIN)/afdm: pyproject.toml $(LOCK)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r $(LOCK)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name afdm-study --display-name "Python (afdm-study)" >/dev/null
	@touch $(BIN)/afdm

test: setup
	$(BIN)/python -m pytest tests

study: setup
	$(BIN)/afdm sweep --preset quick --results $(RESULTS)
	$(BIN)/afdm book --results $(RESULTS)
	@echo "Open book/_build/html/index.html (results in $(RESULTS))"

cpu: setup
	$(BIN)/afdm sweep --preset cpu --results results/cpu

# one AFDM knob at a time on George Washington (the book's Ablation page reads it)
ablation: setup
	$(BIN)/afdm sweep --preset ablation --results results/ablation

capacity: setup
	$(BIN)/afdm sweep --preset capacity --results results/capacity

book: setup
	$(BIN)/afdm book --results results/cpu

bench: setup
	$(BIN)/afdm bench --out results/bench.json

lint: setup
	$(BIN)/ruff check afdm_lib tests

# Regenerate the lock with the newest versions pyproject.toml and lock-pins.in admit (to
# try newer versions: `make lock`, then `make test`). pip-tools runs in a throwaway venv
# so that its own dependencies never mix with the project's.
lock:
	@tool=$$(mktemp -d) && trap 'rm -rf "$$tool"' EXIT && \
	$(PY) -m venv "$$tool" && \
	"$$tool/bin/pip" install -q pip-tools==$(PIP_TOOLS_VERSION) && \
	CUSTOM_COMPILE_COMMAND="make lock" "$$tool/bin/pip-compile" --quiet --upgrade \
	  --generate-hashes --allow-unsafe --strip-extras --extra dev \
	  --no-emit-index-url --no-emit-find-links \
	  --output-file $(LOCK) pyproject.toml lock-pins.in
	@echo "wrote $(LOCK) (sha256 $$(sha256sum $(LOCK) | cut -c1-12)...); run make test"

clean:
	rm -rf $(VENV) .system-stamp book/_build
