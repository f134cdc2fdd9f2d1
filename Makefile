# Everything a fresh machine needs: Python >= 3.11 with venv, g++ (for C simulation), and verilator + yosys
# (rtl target: simulation and synthesis; installed with apt-get when missing and running as root).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup test demo check-tools

check-tools:
	@command -v python3 >/dev/null || { echo "error: python3 (>= 3.11) is required"; exit 1; }
	@python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: python3 >= 3.11 is required"; exit 1; }
	@command -v g++ >/dev/null || { echo "error: g++ is required for C simulation (apt-get install g++)"; exit 1; }
	@command -v verilator >/dev/null && command -v yosys >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q verilator yosys; \
	  else echo "error: verilator and yosys are required for the rtl target (sudo apt-get install -y verilator yosys)"; exit 1; fi; }

$(VENV)/.installed: pyproject.toml | check-tools
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest -q

demo: setup
	TF_CPP_MIN_LOG_LEVEL=3 $(VENV)/bin/spx demo --out out/demo
