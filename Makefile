# Two entry points for a fresh machine: `make study` and `make test`.
# Both create .venv and install everything they need (system fonts/word lists and
# Chromium with apt when it is available, then the exact versions of requirements.lock,
# the CPU torch among them, then the project). `make lock` regenerates the locks.
#
# On a GPU (README, "On a GPU"): `make setup TORCH=cuda` installs requirements-cuda.lock
# (the same versions, with PyPI's CUDA build of torch); `make setup TORCH=own` keeps a
# torch that is already there (the .venv's, or $(PY)'s site-packages) and installs the rest
# of requirements.lock around it.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Exact versions and hashes of every Python package `make setup` installs, compiled from
# pyproject.toml and lock-pins.in (torch 2.13.0 CPU, pip, setuptools) by `make lock`;
# the CUDA variant from pyproject.toml and lock-pins-cuda.in, held to the CPU lock's
# versions.
LOCK_CPU := requirements.lock
LOCK_CUDA := requirements-cuda.lock
TORCH ?= cpu
ifeq ($(TORCH),cpu)
LOCK := $(LOCK_CPU)
else ifeq ($(TORCH),cuda)
LOCK := $(LOCK_CUDA)
else ifeq ($(TORCH),own)
LOCK := $(LOCK_CPU)
else
$(error TORCH=$(TORCH): choose cpu (default), cuda or own)
endif
# what the venv was installed from; a change of TORCH reinstalls
INSTALLED := $(VENV)/.installed-$(TORCH)
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

setup: system $(INSTALLED)

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
# fetch an unpinned setuptools. The CPU torch (2.13.0+cpu) is not on PyPI: where the
# configured package sources lack it, scripts/torch_index.py adds PyTorch's CPU index
# and says so (nothing is added where they have it: no extra request per package).
$(VENV)/.installed-cpu $(VENV)/.installed-cuda: pyproject.toml $(LOCK)
	$(PY) -m venv $(VENV)
	extra=$$($(BIN)/python scripts/torch_index.py --lock $(LOCK) --pip $(BIN)/pip) && \
	  $(BIN)/pip install -q --require-hashes $$extra -r $(LOCK)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name afdm-study --display-name "Python (afdm-study)" >/dev/null
	@rm -f $(VENV)/.installed-*
	@touch $@

# Bring your own torch (a CUDA build for this machine's driver, installed beforehand in
# .venv or in $(PY)'s environment): everything else of requirements.lock, at its versions
# and hashes, then the project. Records name the lock and list torch as a mismatch.
$(VENV)/.installed-own: pyproject.toml $(LOCK_CPU)
	@test -x $(BIN)/python || $(PY) -m venv --system-site-packages $(VENV)
	@$(BIN)/python -c "import torch" 2>/dev/null || { echo "make: TORCH=own, but \
	  $(BIN)/python cannot import torch: install a torch into $(VENV) first, or give \
	  PY=<a python that has one> with no $(VENV) yet (README, 'On a GPU')" >&2; exit 1; }
	@echo "make: keeping $$($(BIN)/python -c 'import torch; print("torch", torch.__version__, \
	  "CUDA", torch.version.cuda, "from", torch.__file__)')"
	$(BIN)/python scripts/torch_index.py --lock $(LOCK_CPU) --without-torch > $(VENV)/lock-without-torch.txt
	$(BIN)/pip install -q --require-hashes -r $(VENV)/lock-without-torch.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name afdm-study --display-name "Python (afdm-study)" >/dev/null
	@rm -f $(VENV)/.installed-*
	@touch $@

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

# Regenerate the locks with the newest versions pyproject.toml and lock-pins.in admit (to
# try newer versions: `make lock`, then `make test`). pip-tools runs in a throwaway venv
# so that its own dependencies never mix with the project's. The CUDA lock is compiled
# second, constrained to every version of the CPU lock but torch, so that the two differ
# only in torch and the CUDA wheels it pulls (tests/test_lock.py checks it), with
# find-links folders switched off (PIP_FIND_LINKS=" "): pip-tools would otherwise take
# the hash of a local 2.13.0+cpu wheel for PyPI's 2.13.0. The CPU torch comes from
# PyTorch's CPU index where the configured sources lack it.
lock:
	@tool=$$(mktemp -d) && trap 'rm -rf "$$tool"' EXIT && \
	$(PY) -m venv "$$tool" && \
	"$$tool/bin/pip" install -q pip-tools==$(PIP_TOOLS_VERSION) && \
	extra=$$("$$tool/bin/python" scripts/torch_index.py --lock lock-pins.in --pip "$$tool/bin/pip") && \
	CUSTOM_COMPILE_COMMAND="make lock" "$$tool/bin/pip-compile" --quiet --upgrade \
	  --generate-hashes --allow-unsafe --strip-extras --extra study --extra dev \
	  --no-emit-index-url --no-emit-find-links $$extra \
	  --output-file $(LOCK_CPU) pyproject.toml lock-pins.in && \
	"$$tool/bin/python" scripts/torch_index.py --lock $(LOCK_CPU) --pins-without-torch \
	  > "$$tool/cpu-pins.txt" && \
	PIP_FIND_LINKS=" " CUSTOM_COMPILE_COMMAND="make lock" "$$tool/bin/pip-compile" --quiet --upgrade \
	  --generate-hashes --allow-unsafe --strip-extras --extra study --extra dev \
	  --no-emit-index-url --no-emit-find-links -c "$$tool/cpu-pins.txt" \
	  --output-file $(LOCK_CUDA) pyproject.toml lock-pins-cuda.in && \
	sed -i "s|$$tool/cpu-pins.txt|$(LOCK_CPU)|" $(LOCK_CUDA)
	@echo "wrote $(LOCK_CPU) (sha256 $$(sha256sum $(LOCK_CPU) | cut -c1-12)...) and" \
	  "$(LOCK_CUDA) (sha256 $$(sha256sum $(LOCK_CUDA) | cut -c1-12)...); run make test"

clean:
	rm -rf $(VENV) .system-stamp book/_build
