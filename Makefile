# metaaug: one-command setup, training, tests and benchmarks.
# Every target that runs code first makes sure .venv exists and holds the current install.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
OMNIGLOT ?= ../shared/data/omniglot
MNIST ?= $(HOME)/.cache/metaaug/data
FIGR_SOURCE ?=
SEEDS ?= 0,1,2
THREADS ?= 1

.DEFAULT_GOAL := help
.PHONY: help install train fewshot test test-full lint format bench bench-meta bench-quality \
	bench-fewshot bench-fewshot-recipe bench-ablation bench-classifiers bench-recipe results faults bench-speed bench-precision tensorboard clean figr-omniglot figr-mnist dawson-mnist

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -c "import torch, torchvision, hydra; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install metaaug with its dev tools

train: $(STAMP) ## run `metaaug train` with the defaults (digits, no download); ARGS='...' adds overrides
	$(BIN)/metaaug train $(ARGS)

fewshot: $(STAMP) ## run `metaaug fewshot` with the defaults (digits, 5-way 5-shot, 600 episodes)
	$(BIN)/metaaug fewshot $(ARGS)

test: $(STAMP) ## the default test suite (excludes tests marked slow)
	$(BIN)/python -m pytest -q $(ARGS)

test-full: $(STAMP) ## every test, the slow ones included
	$(BIN)/python -m pytest -q -m '' $(ARGS)

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## apply ruff's formatter and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# the default runs' own thread count (the 2 cores) unless THREADS=... is given
bench bench-precision bench-classifiers: THREADS = 2
bench: $(STAMP) ## `metaaug train` defaults per seed: timings and quality, SEEDS, THREADS (2), docs/results/train.json (~2 min)
	$(BIN)/python scripts/bench_train.py --seeds $(SEEDS) --threads $(THREADS) $(ARGS)

bench-meta: $(STAMP) ## meta-step speed (vmap vs sequential), MAML memory, FIGR's architecture; docs/results/meta.json (~3 min)
	$(BIN)/python scripts/bench_meta.py $(ARGS)

bench-classifiers: $(STAMP) ## the classifiers a first run trains on the shared Omniglot subset: seconds and accuracy, SEEDS, THREADS (2); docs/results/classifiers.json (~20 min)
	$(BIN)/python scripts/bench_classifiers.py --seeds $(SEEDS) --threads $(THREADS) $(ARGS)

bench-speed: $(STAMP) ## episode speed per precision/format/compile, FIGR_SOURCE=<FIGR checkout> adds FIGR's loop; docs/results/speed.json (~15 min)
	$(BIN)/python scripts/bench_speed.py $(if $(FIGR_SOURCE),--figr-source $(FIGR_SOURCE)) $(ARGS)

bench-precision: $(STAMP) ## fp32 vs bf16 quality, digits and Omniglot defaults, SEEDS, THREADS (2), docs/results/precision.json (~20 min)
	$(BIN)/python scripts/bench_precision.py --omniglot $(OMNIGLOT) --seeds $(SEEDS) --threads $(THREADS) $(ARGS)

bench-quality: $(STAMP) ## quality vs fine-tune steps of every initialization, SEEDS, THREADS, docs/results/quality.json (hours)
	$(BIN)/python scripts/bench_quality.py --seeds $(SEEDS) --threads $(THREADS) $(ARGS)

faults: $(STAMP) ## fault trials: SIGKILL/SIGTERM + resume, forced divergences, full disk, two runs in one dir (~10 min)
	$(BIN)/python scripts/faults.py $(ARGS)

# the recipe's seeds: those whose meta-test alphabet its search never judged on (docs/choices.md)
bench-recipe: SEEDS = 0,2,3
bench-recipe: $(STAMP) ## the Omniglot recipe (experiment=omniglot_cpu): every arm at 10/50/200 steps, 10 targets x SEEDS (0,2,3), 95% intervals, docs/results/recipe.json (~1 h)
	$(BIN)/python scripts/bench_recipe.py --root $(OMNIGLOT) --seeds $(SEEDS) --threads $(THREADS) $(ARGS)

results: $(STAMP) ## render the tables of docs/results.md from the JSON under docs/results/
	$(BIN)/python scripts/render_results.py $(ARGS)

bench-fewshot: $(STAMP) ## few-shot accuracy of every learner x arm, Omniglot 5-way 1/5-shot (hours)
	$(BIN)/python scripts/bench_fewshot.py $(ARGS)

bench-ablation: $(STAMP) ## issue 22's ablation of the gan arm (STAGE=val to choose, then STAGE=test; hours)
	$(BIN)/python scripts/bench_ablation.py --stage $(or $(STAGE),val) $(ARGS)

bench-fewshot-recipe: $(STAMP) ## few-shot with the Omniglot recipe's GAN adapted per episode class (RECIPE_RUN=<train run>; ~1 h)
	$(BIN)/python scripts/bench_fewshot.py --recipe $(if $(RECIPE_RUN),--train-dir $(RECIPE_RUN)) $(ARGS)

figr-omniglot: $(STAMP) ## reproduce FIGR on Omniglot (OMNIGLOT=<root>; ~100k meta-iterations: long)
	$(BIN)/metaaug train experiment=figr_omniglot dataset.root=$(OMNIGLOT) $(ARGS)

figr-mnist: $(STAMP) ## reproduce FIGR on MNIST (MNIST=<root holding MNIST/raw>)
	$(BIN)/metaaug train experiment=figr_mnist dataset.root=$(MNIST) $(ARGS)

dawson-mnist: $(STAMP) ## reproduce DAWSON (first-order MAML) on MNIST (MNIST=<root>)
	$(BIN)/metaaug train experiment=dawson_mnist dataset.root=$(MNIST) $(ARGS)

tensorboard: $(STAMP) ## serve TensorBoard over every run under outputs/ (http://localhost:6006)
	$(BIN)/tensorboard --logdir outputs

clean: ## remove the venv, caches and build files (keeps outputs/)
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
