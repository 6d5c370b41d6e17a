# ijr — make targets. `make help` lists them. Every target bootstraps .venv on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
LAUNCHER ?= local
# make claims: concurrent training jobs (one thread each), e.g. JOBS=2 on a 2-core machine
JOBS ?= 1
DATA_ROOT ?= $(CURDIR)/data
RUNS ?= $(CURDIR)/runs
RESULTS ?= $(CURDIR)/results
# Developers' machines carry real CIFAR-10 (ImageFolder JPEGs) beside the repo; users' clones do not.
CIFAR_ARCHIVE ?= $(wildcard $(CURDIR)/../shared/data/cifar10-jpeg.tar.gz)
PYTEST_ARGS ?=
# Extra Hydra overrides for every run of a target, e.g. OVERRIDES="hydra.launcher.partition=gpu seed=1"
OVERRIDES ?=
# glibc's allocator returns memory to the OS on every large free; transparent huge pages make
# the HVP loops about 2x faster on CPU (measured, see README "Performance").
export THP_MEM_ALLOC_ENABLE ?= 1
export DATA_ROOT
export HYDRA_FULL_ERROR ?= 0
COMMON := profile=$(PROFILE) hydra/launcher=$(LAUNCHER) paths.runs=$(RUNS) data.root=$(DATA_ROOT)

.DEFAULT_GOAL := help
.PHONY: help install test test-slow test-all test-slurm demo lint format clean bench table1 table2 table5 table6 figures wandb-sync p002 p004 claims report
REPRODUCE = $(PY) scripts/reproduce.py --profile $(PROFILE) --launcher $(LAUNCHER) --runs $(RUNS) --results $(RESULTS) --data-root $(DATA_ROOT) $(if $(CIFAR_ARCHIVE),--archive $(CIFAR_ARCHIVE)) --overrides '$(OVERRIDES)'

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_%-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'
	@echo "  variables: PROFILE=quick|paper (now $(PROFILE)) LAUNCHER=local|submitit_local|slurm|slurm_cpu (now $(LAUNCHER)) OVERRIDES='key=value ...' DATA_ROOT=$(DATA_ROOT)"
	@echo "report targets (the registry, src/ijr/reporting/papers/): make NAME, make report NAME=NAME; earlier names in ()"
	@PYTHONPATH=$(CURDIR)/src $(if $(wildcard $(PY)),$(PY),$(PYTHON)) scripts/reproduce.py --list

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip >/dev/null
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed ## create .venv and install ijr with its pinned dependencies

test: install ## fast test suite (CPU, no network; the CI command)
	$(PY) -m pytest -q --durations=25 $(PYTEST_ARGS)

test-slow: install ## slow tests too (real CIFAR-10 where ../shared/data is present)
	$(PY) -m pytest -q -m 'not gpu and not bench' $(PYTEST_ARGS)

test-all: install ## everything, GPU tests included (they skip without CUDA)
	$(PY) -m pytest -q -m '' $(PYTEST_ARGS)

test-slurm: install ## SLURM tests on a single-node SLURM this target installs and starts (root, Debian; scripts/ci/slurm_cluster.sh)
	@scripts/ci/slurm_cluster.sh up || { scripts/ci/slurm_cluster.sh down; exit 1; }
	IJR_REQUIRE_SLURM=1 $(PY) -m pytest -q -m slurm tests/test_slurm.py --durations=0 $(PYTEST_ARGS); status=$$?; \
	$(if $(SLURM_KEEP),,scripts/ci/slurm_cluster.sh down;) exit $$status

lint: install ## ruff
	$(VENV)/bin/ruff check src tests scripts
	$(VENV)/bin/ruff format --check src tests scripts

format: install ## ruff format + fixes
	$(VENV)/bin/ruff format src tests scripts
	$(VENV)/bin/ruff check --fix src tests scripts

demo: install ## the tour: quick Figures 1, 2, 4 and a Table 1 slice (CIFAR-10 from DATA_ROOT, else digits; ~15 min CPU)
	$(PY) scripts/demo.py --runs $(RUNS) --data-root $(DATA_ROOT) $(if $(CIFAR_ARCHIVE),--archive $(CIFAR_ARCHIVE))

bench: install ## benchmarks (ratios against the references, measured in the same run)
	$(PY) scripts/bench/bench_training.py; $(PY) scripts/bench/bench_methods.py; $(PY) scripts/bench/bench_curvature.py

table1: install ## Table 1: sweep (SimpleCNN rows; + WRN rows with PROFILE=paper) then results/$(PROFILE)/table1.{md,csv,tex}
	$(REPRODUCE) table1

table2: install ## Table 2: AT / TRADES with and without efficient EJR (GPU scale: PROFILE=paper) then results/$(PROFILE)/table2.*
	$(REPRODUCE) table2

table5: install ## Table 5: EJR parameter sweeps then results/$(PROFILE)/table5.*
	$(REPRODUCE) table5

table6: install ## Table 6: EJR.v2 sweep (GPU scale: PROFILE=paper) then results/$(PROFILE)/table6.*
	$(REPRODUCE) table6

figures: install ## every figure that fits the profile: results/$(PROFILE)/fig*.{png,pdf}
	$(REPRODUCE) figures

fig%: install ## one of paper 000's figures by its earlier name, e.g. `make fig4` (= make 000-fig4)
	$(REPRODUCE) fig$*

report: ## one registry target by name: `make report NAME=000-fig4` (or NAME=fig4, NAME=004-fig1)
	@test -n "$(NAME)" || { echo "make report: set NAME=<target> (make help lists them)" >&2; exit 2; }
	@$(MAKE) --no-print-directory install
	$(REPRODUCE) $(NAME)

00%: install ## one registry target by its paper-qualified name, e.g. `make 000-fig4`, `make 004-fig1`
	$(REPRODUCE) 00$*

P002_GPU := p002-fig2 p002-fig3 p002-fig5 p002-fig28
p002: p002-fig1 p002-c3 p002-input-scaling $(if $(filter paper,$(PROFILE)),$(P002_GPU)) ## companion paper 002 (MacDonald et al.): results/$(PROFILE)/p002/ (Figs. 2-5, 28-29 with PROFILE=paper only: GPU scale)

p002-%: install ## one paper-002 family by its earlier name: p002-fig1 (= make 002-fig1) p002-fig2 p002-fig3 p002-fig5 p002-fig28 p002-c3 p002-input-scaling
	$(REPRODUCE) p002-$*

p004: p004-fig1 p004-fig2 p004-fig3 p004-sec4 ## companion paper 004 (Li, Wang & Li): all four, results/$(PROFILE)/p004/

p004-%: install ## one paper-004 figure by its earlier name: p004-fig1 (= make 004-fig1) p004-fig2 p004-fig3 p004-sec4
	$(REPRODUCE) p004-$*

claims: install ## the papers' claims checked: train what fits PROFILE (e.g. PROFILE=cpu), draw its figures, write results/$(PROFILE)/claims/claims.{md,csv} (RECORDS=1: go on from the records in results/$(PROFILE)/runs, add the new runs to them and judge on them)
	$(PY) -m ijr.claims.runner --profile $(PROFILE) --launcher $(LAUNCHER) --runs $(RUNS) --results $(RESULTS) --data-root $(DATA_ROOT) --jobs $(JOBS) $(if $(CIFAR_ARCHIVE),--archive $(CIFAR_ARCHIVE)) $(if $(RECORDS),--records --restore)

wandb-sync: install ## upload offline W&B runs found under RUNS
	@found=$$(find $(RUNS) -type d -name 'offline-run-*' 2>/dev/null); \
	if [ -z "$$found" ]; then echo "wandb-sync: no offline W&B runs under $(RUNS)"; else $(VENV)/bin/wandb sync $$found; fi

clean: ## remove caches and run directories (keeps .venv and results/)
	rm -rf runs outputs multirun .pytest_cache .ruff_cache wandb
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
