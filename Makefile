# `make demo`: set everything up and run the main jobs on real speech, images and video.
# `make test`: set everything up, check formatting and lint, run the tests.
# Both work from a fresh clone: they install the Debian data packages, a virtual environment,
# torch (the CPU build by default) and sensorium itself.

VENV ?= .venv
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
DEBIAN_PACKAGES := asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav \
  asterisk-core-sounds-fr-wav dataset-fashion-mnist opencv-doc espeak-ng
BIN := $(VENV)/bin

.PHONY: setup system-packages demo test clean

setup: system-packages $(VENV)/.installed

system-packages:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  echo "installing Debian packages:$$missing"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

# torch goes in first and alone: a bare requirement would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

demo: setup
	$(BIN)/sensorium wavenet demo --out demo-output/wavenet --force
	$(BIN)/sensorium pixelcnn demo --out demo-output/pixelcnn --force
	$(BIN)/sensorium seqnms demo --out demo-output/seqnms --frames 30 --force
	$(BIN)/sensorium phai probe shipped --out demo-output/phai --force \
	  --tasks seismic,recorded-language,rf-emitter,speaker,digits --scale 0.5

test: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache
