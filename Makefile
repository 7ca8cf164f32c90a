# digitlab — `make help` lists the targets.
# The first two commands of the README are `make all` and `make test`; both
# create the virtual environment and install the requirements when needed.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SEED ?= 0
# Where to train and evaluate: auto = a CUDA GPU, else Apple MPS, else the CPU.
DEVICE ?= auto
# Where a study's independent runs go: WORKERS local processes (auto: one per core, or per
# GPU), or the Dask cluster whose scheduler is at SCHEDULER (tcp://host:8786).
# FRESH=1 reruns every run of a study instead of reusing the ones stored by an earlier
# (interrupted) run; stored runs are reused only for the same inputs and code anyway.
WORKERS ?= 1
SCHEDULER ?=
FRESH ?=
FRESH_FLAG := $(if $(filter-out 0 no false,$(FRESH)),--fresh)
STUDY := --workers $(WORKERS) $(if $(SCHEDULER),--scheduler $(SCHEDULER)) $(FRESH_FLAG)
NB_STUDY := -p workers $(WORKERS) -p scheduler $(or $(SCHEDULER),null) $(if $(FRESH_FLAG),-p fresh true)
# A local MNIST-format folder (the four IDX files) for every step that reads MNIST, e.g.
# `make all MNIST_DIR=~/datasets/mnist`; empty: each step's own default (`auto`).
MNIST_DIR ?=
MNIST_DATA = $(if $(MNIST_DIR),--source local --data-dir $(MNIST_DIR))
MNIST_PARAMS = $(if $(MNIST_DIR),-p source local -p data_dir $(MNIST_DIR))
# Where the pipeline writes data/, results/ and models/ (default: the repository); the README's
# full-MNIST column is `make all MNIST_DIR=FOLDER OUT=runs/full-mnist`.
OUT ?=
ifneq ($(OUT),)
export DIGITLAB_ROOT := $(abspath $(OUT))
endif
# The targets `make pipeline-time` times, and the variables it hands to each: FRESH=1, so
# that a study stored by an earlier run of the same code does not shorten the run it times.
PIPELINE_TARGETS ?= all test
PIPELINE_VARS = FRESH=1 $(if $(MNIST_DIR),MNIST_DIR=$(MNIST_DIR)) $(if $(OUT),OUT=$(OUT))
# The speedrun's tier (make speedrun): 99.0, 99.5 or 99.7 (% of the test digits).
TARGET ?= 99.0
SELECT ?=
# Extra options for pytest, e.g. `make test PYTEST_ARGS="-k idx -x"`.
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup notebook-filter lab all all-begin minimnist mnist noisy generator app test lint clean notebooks-sync \
	minimnist-bench mnist-bench mnist-recipe mnist-full-recipe noisy-bench noisy-recipe app-bench classify-bench \
	benchmarks summary pipeline-time slides workers-bench full-scale-bench generator-bench screenshot \
	speedrun reproduce cpu-limits

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed notebook-filter ## Create .venv and install the requirements (if needed)

notebook-filter: ## Commit notebooks without their outputs: the nbstripout git filter of .gitattributes (nothing outside a git checkout); the index is refreshed once, so that later git calls do not filter every notebook again
	@if git rev-parse --git-dir >/dev/null 2>&1; then git config filter.nbstripout.clean '"$(abspath $(VENV))/bin/nbstripout"' && git config filter.nbstripout.smudge cat && git config diff.ipynb.textconv '"$(abspath $(VENV))/bin/nbstripout" -t' && { git update-index -q --refresh >/dev/null 2>&1 || true; }; fi

lab: setup ## Open the notebooks in JupyterLab; saving a notebook also writes its .py twin (jupytext)
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks

all: all-begin minimnist mnist noisy generator ## Run the whole pipeline (on MNIST_DIR if given) into results/, ending with results/index.html
	$(PY) scripts/summarize.py --end

# The first step of `make all`: mark the run as started and put a "not finished" banner on
# results/index.html, which --end replaces; an interrupted run leaves the banner.
all-begin: setup
	$(PY) scripts/summarize.py --begin

minimnist: setup ## Mini MNIST: generate, preprocess, cluster, evaluate, split, train the MLP
	$(PY) scripts/generate_data.py --seed $(SEED)
	$(PY) scripts/preprocess.py
	$(PY) scripts/clustering.py --seed $(SEED)
	$(PY) scripts/evaluate.py
	$(PY) scripts/split_data.py --seed $(SEED)
	$(PY) scripts/run_notebook.py train_mini_mnist -p seed $(SEED) -p device $(DEVICE)

minimnist-bench: setup ## Mini MNIST targets: ARI and the ladder on default and random data (~1-2 min)
	$(PY) benchmarks/minimnist_ladder.py --device $(DEVICE)

mnist: setup ## MNIST CNNs: train the best CNN, evaluate it, run the notebooks, draw the project's slides
	$(PY) scripts/train_cnn.py --seed $(SEED) --device $(DEVICE) $(MNIST_DATA)
	$(PY) scripts/evaluate_model.py --seed $(SEED) --device $(DEVICE) $(MNIST_DATA)
	$(PY) scripts/run_notebook.py mnist_01_exploration -p seed $(SEED) $(MNIST_PARAMS)
	$(PY) scripts/run_notebook.py mnist_02_first_cnn -p seed $(SEED) -p device $(DEVICE) $(MNIST_PARAMS)
	$(PY) scripts/run_notebook.py mnist_03_numpy_softmax -p seed $(SEED) $(MNIST_PARAMS)
	$(PY) scripts/run_notebook.py mnist_04_variants -p seed $(SEED) -p device $(DEVICE) $(MNIST_PARAMS) $(NB_STUDY)
	$(PY) scripts/run_notebook.py mnist_05_cnn_project -p seed $(SEED) -p device $(DEVICE) $(MNIST_PARAMS)
	$(PY) scripts/make_slides.py

slides: setup ## The CNN project's slide deck, results/mnist/slides.pdf, from its metrics and figures (needs make mnist)
	$(PY) scripts/make_slides.py

mnist-bench: setup ## MNIST CNNs: best CNN vs the PyTorch example network over 3 seeds, speed and accuracy (several minutes)
	$(PY) benchmarks/mnist_cnn.py --device $(DEVICE) $(MNIST_DATA) $(FRESH_FLAG)

mnist-full-recipe: setup ## MNIST CNNs: how the full-MNIST recipe was chosen: candidates trained on 55,000 digits, scored on the 5,000 validation digits (needs MNIST_DIR or data/raw/mnist; long on a CPU)
	$(PY) benchmarks/mnist_full_recipe.py --device $(DEVICE) $(if $(MNIST_DIR),--data-dir $(MNIST_DIR))

mnist-recipe: setup ## MNIST CNNs: how the best CNN's recipe was chosen, by cross-validation without the test split (19 candidates x 4 folds: the longest run; WORKERS=, SCHEDULER=, FRESH=1)
	$(PY) benchmarks/mnist_cnn_recipe.py --seed $(SEED) --device $(DEVICE) $(STUDY) $(MNIST_DATA)

workers-bench: setup ## Studies: the recipe comparison (2 candidates x 4 folds) on 1 then 2 worker processes, one thread per run: wall times, speed-up, identical tables
	$(PY) benchmarks/study_workers.py --device $(DEVICE) $(MNIST_DATA)

noisy: setup ## Noisy MNIST: build the noisy sets, compare DNNs and CNNs
	$(PY) scripts/make_noisy_mnist.py --seed $(SEED) $(MNIST_DATA)
	$(PY) scripts/run_notebook.py noisy_mnist -p seed $(SEED) -p device $(DEVICE) $(NB_STUDY)

noisy-bench: setup ## Noisy MNIST target: best CNN vs DNNs on AWGN digits over 3 seeds (several minutes)
	$(PY) benchmarks/noisy_mnist.py --device $(DEVICE) $(MNIST_DATA) $(FRESH_FLAG)

noisy-recipe: setup ## Noisy MNIST: the best CNN's recipe candidates compared on awgn digits by cross-validation (as long as mnist-recipe)
	$(PY) benchmarks/mnist_cnn_recipe.py --noise awgn --seed $(SEED) --device $(DEVICE) $(STUDY) $(MNIST_DATA)

generator: setup ## PCA + KDE generator: fit and save the models, run its notebook
	$(PY) scripts/fit_generator.py --seed $(SEED) $(MNIST_DATA)
	$(PY) scripts/run_notebook.py train_kde_model -p seed $(SEED) -p device $(DEVICE) $(MNIST_PARAMS)

generator-bench: setup ## Generator: samples the best CNN reads as the requested digit, over 3 seeds (a few minutes)
	$(PY) benchmarks/generator_quality.py --device $(DEVICE) $(MNIST_DATA)

full-scale-bench: setup ## The best CNN's recipe on 60,000 + 10,000 images (the full MNIST: MNIST_DIR or data/raw/mnist; long on a CPU)
	$(PY) benchmarks/full_scale.py --device $(DEVICE) $(if $(MNIST_DIR),--data-dir $(MNIST_DIR))

speedrun: setup ## Speedrun: the tier's recipe (TARGET=99.0, 99.5 or 99.7) over seeds 0-4 on the full MNIST (MNIST_DIR or data/raw/mnist), against the anchor recipe; SELECT=1 chooses the tier's recipe on validation instead
	$(PY) benchmarks/speedrun.py --target $(TARGET) --device $(DEVICE) $(if $(MNIST_DIR),--data-dir $(MNIST_DIR)) $(if $(filter-out 0 no false,$(SELECT)),--select)

cpu-limits: setup ## Speedrun: this CPU's peak multiply-add rate, and each tier's training step with one choice changed at a time (precision, layout, batch, threads, torch.compile); minutes
	$(PY) benchmarks/cpu_limits.py

reproduce: setup ## The learning journal's published numbers at its own settings, 3 seeds each, on the full MNIST (MNIST_DIR or data/raw/mnist; hours on a CPU, resumable; WORKERS=, SCHEDULER=, DEVICE=, FRESH=1)
	$(PY) scripts/reproduce_journal.py --device $(DEVICE) $(if $(MNIST_DIR),--data-dir $(MNIST_DIR)) $(STUDY)

app-bench: setup ## Web app load test: 16 clients, 2,000 requests to /generate and to /classify (needs make generator and make mnist)
	$(PY) benchmarks/app_load.py $(MNIST_DATA)

classify-bench: setup ## Web app: accuracy of POST /classify on 280x280 PNGs vs the CNN on the 28x28 originals (needs make mnist)
	$(PY) benchmarks/classify_api.py $(MNIST_DATA)

benchmarks: minimnist-bench mnist-bench noisy-bench generator-bench app-bench classify-bench summary ## Run the benchmarks (not the recipe comparisons or full scale), then refresh the summary

pipeline-time: setup ## Time `make all` and `make test` (PIPELINE_TARGETS=; with MNIST_DIR and OUT, e.g. the full-MNIST run), then refresh the summary
	$(PY) benchmarks/pipeline_time.py --targets $(PIPELINE_TARGETS) --make-vars $(PIPELINE_VARS)
	$(PY) scripts/summarize.py --update-readme

summary: setup ## Collect the headline numbers into results/summary.md (OUT/results/ with OUT=) and the results page index.html; rebuild README.md's table from results/ and runs/full-mnist/results/
	$(PY) scripts/summarize.py --update-readme

app: setup ## Serve the web app (generate digits; draw one at /draw) with waitress on http://127.0.0.1:8000
	$(PY) scripts/serve.py

screenshot: setup ## Retake docs/draw_page.png (the drawing page, shown in docs/web.md) in headless Chromium
	DIGITLAB_SCREENSHOT=1 $(PY) -m pytest -q tests/test_browser.py -k closed_loop

test: setup ## Run the test suite
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup ## Check style with ruff
	$(PY) -m ruff check digitlab scripts tests benchmarks

notebooks-sync: setup ## Re-pair notebooks with their py:percent twins
	$(VENV)/bin/jupytext --sync notebooks/*.ipynb

clean: ## Remove generated data, results and models (keeps .venv)
	find data results models -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
