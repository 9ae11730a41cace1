# aape-lightning: the few commands a user needs. `make help` lists them.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch/torchvision pinned to the releases this offline workplace holds (the CPU 2.13 wheel has no torchvision)
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed

.PHONY: help install test test-fast mutation mutation-recheck demo demo-retrieval reproduce-table estimate lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip>=23" 
	$(BIN)/pip install -q $(TORCH_PIN) "setuptools<81"
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the package with its test extras (offline-safe)

test: $(STAMP)  ## run the whole test suite (what CI runs)
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q

test-fast: $(STAMP)  ## the suite without the subprocess end-to-end runs
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q -m "not slow"

# `make mutation`: mutmut over the modules the paper's numbers depend on ([tool.mutmut] in pyproject.toml), one
# `mutmut run` per module shard, each mutant against only the selected tests that reach it; not part of `make test`.
# Writes results/mutation.md (score, equivalents, survivors). MUTATION_JOBS: mutants tested at once.
# `make mutation-recheck`: after adding tests, re-test only the mutants the last run left alive, and every mutant of
# a source file changed since that run (a pragma renumbers a file's mutants); rewrites the report.
MUTATION_SHARDS ?= core heads metrics data.classification.protocols tasks.base
MUTATION_JOBS ?= 2
# MUTATION_RECHECK: a regular expression; mutation-recheck re-tests only the mutants whose names match it
MUTATION_RECHECK ?= .
MUTMUT := env -u PYTHONPATH OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(BIN)/mutmut
# appends "<what> <commit> <seconds> <load average at start> / <at end>" to mutants/runs.tsv
LOG_RUN = printf '%s\t%s\t%s\t%s / %s\n' "$(1)" "$$(git rev-parse --short HEAD)$$(git diff --quiet HEAD || echo +changes)" \
	  $$(( $$(date +%s) - t0 )) "$$l0" "$$(cut -d' ' -f1-3 /proc/loadavg)" >> mutants/runs.tsv

mutation: $(STAMP)  ## mutation score of core, heads, metrics, protocols and tasks/base -> results/mutation.md
	rm -rf mutants && mkdir -p mutants
	@status=0; for s in $(MUTATION_SHARDS); do \
	  t0=$$(date +%s); l0=$$(cut -d' ' -f1-3 /proc/loadavg); echo "mutation: aape_lightning.$$s"; \
	  $(MUTMUT) run --max-children $(MUTATION_JOBS) "aape_lightning.$$s.*" > mutants/run_$$s.log 2>&1 \
	    || { status=1; tail -20 mutants/run_$$s.log; }; \
	  $(call LOG_RUN,aape_lightning.$$s); \
	done; env -u PYTHONPATH $(BIN)/python tools/mutation_report.py || status=1; exit $$status

mutation-recheck: $(STAMP)  ## re-test the mutants `make mutation` left alive (after adding tests) -> results/mutation.md
	@test -d mutants || { echo "mutation-recheck: no mutants/ here; run make mutation first"; exit 1; }
	@rm -f mutants/mutmut-stats.json; t0=$$(date +%s); l0=$$(cut -d' ' -f1-3 /proc/loadavg); status=0; \
	for c in $$(cut -f2 mutants/runs.tsv | sed 's/+changes//' | sort -u); do git diff --name-only $$c HEAD -- src; done \
	  | sort -u | while read -r f; do rm -f "mutants/$$f.meta"; done; \
	for states in 'survived\|no tests\|suspicious\|not checked' 'not checked'; do \
	  names=$$($(MUTMUT) results | sed -n "s/^ *\(.*\): \($$states\)$$/\1/p" | grep -E '$(MUTATION_RECHECK)'); \
	  echo "mutation-recheck: $$(echo $$names | wc -w) mutants ($$states)"; [ -n "$$names" ] || continue; \
	  $(MUTMUT) run --max-children $(MUTATION_JOBS) $$names >> mutants/run_recheck.log 2>&1 \
	    || { status=1; tail -20 mutants/run_recheck.log; }; \
	done; $(call LOG_RUN,re-test of the survivors); env -u PYTHONPATH $(BIN)/python tools/mutation_report.py || status=1; \
	exit $$status

demo: $(STAMP)  ## the main job on the embedded offline demo world, then the probe of its AAPE runs
	HF_HUB_OFFLINE=1 $(BIN)/aape table --config configs/table/demo_quick.yaml
	HF_HUB_OFFLINE=1 $(BIN)/aape demo probe --root data/demo \
		--ckpt $$(ls runs/demo_table/*/aape/seed1/lightning_logs/version_*/checkpoints/*.ckpt)

demo-retrieval: $(STAMP)  ## retrieval R@K, plain CLIP vs AAPE (zero-shot and finetuned to sketches), 3 seeds
	HF_HUB_OFFLINE=1 $(BIN)/python -m aape_lightning.experiments.retrieval_transfer

# `make reproduce-table`: the paper's tables on the offline demo world (configs/table/demo*.yaml);
# `make reproduce-table DATA=<root> BACKBONE=ViT-B/16 TABLE=base2new|dg|cross|ablations|scaling|cost`: the real
# ones (configs/table/<table>.yaml); BACKBONE is any name of docs/backbones.md (ViT-B/16,
# open_clip:ViT-B-16/laion2b_s34b_b88k, hf:google/siglip-base-patch16-224, ...). Each refreshes results/<table>.md,
# .csv and .png (`--results results`; a plain `aape table` writes them under its runs/ folder); an interrupted
# table resumes. docs/scale-out.md: 1 GPU, 8, SLURM.
# JOBS: runs at once, each in its own process with CPUs / JOBS threads (the cost table always measures alone);
# 2 for the demo tables (1 h 04 min on 2 CPU cores), 1 for real data (one GPU, one run).
# GPUS=0,1,2,3: one run per GPU at a time (JOBS=8 with 4 GPUs: two per GPU), each pinned by CUDA_VISIBLE_DEVICES.
# LAUNCHER=slurm: one SLURM job per run through submitit, resources from SLURM_CONFIG.
TABLES ?= base2new dg cross ablations scaling cost
TABLE ?= $(TABLES)
DATA ?=
BACKBONE ?= ViT-B/16
GPUS ?=
LAUNCHER ?= local
SLURM_CONFIG ?= configs/table/launchers/slurm.yaml
JOBS ?= $(if $(GPUS)$(filter slurm,$(LAUNCHER)),,$(if $(DATA),1,2))
RUN_FLAGS = --results results $(if $(JOBS),--jobs $(JOBS)) $(if $(GPUS),--devices $(GPUS)) \
	$(if $(filter slurm,$(LAUNCHER)),--config $(SLURM_CONFIG))

reproduce-table: $(STAMP)  ## the paper's tables: demo world by default; DATA=<root> BACKBONE=.. TABLE=.. GPUS=.. LAUNCHER=..
	@status=0; for t in $(TABLE); do \
	  case $$t in scaling) specs="scaling_shots scaling_prompts";; *) specs=$$t;; esac; \
	  for s in $$specs; do \
	    if [ -n "$(DATA)" ]; then \
	      $(BIN)/aape table --config configs/table/$$s.yaml --root "$(DATA)" --backbone "$(BACKBONE)" $(RUN_FLAGS) || status=1; \
	    else \
	      spec=configs/table/demo_$$s.yaml; [ $$s = base2new ] && spec=configs/table/demo.yaml; \
	      HF_HUB_OFFLINE=1 $(BIN)/aape table --config $$spec $(RUN_FLAGS) || status=1; \
	    fi; \
	  done; \
	done; exit $$status

# `make estimate`: the cost table's FLOPs per run, priced at the cost table's own device and at GPU_TFLOPS, an
# ASSUMED sustained rate (default: a V100 at 30 % of its 125 TFLOP/s fp16 tensor-core peak; not measured here)
GPU_TFLOPS ?= 37.5
GPU ?= a V100 (assumed 30 % of its 125 TFLOP/s fp16 peak)
estimate:  ## hours per real table, estimated from the cost table (results/table_hours_estimate.md)
	$(BIN)/python -m aape_lightning.experiments.estimate --gpu_tflops "$(GPU_TFLOPS)" --gpu "$(GPU)"

lint: $(STAMP)  ## ruff, and the import contracts (layers, no circles: [tool.importlinter] in pyproject.toml)
	$(BIN)/ruff check src tests
	PYTHONPATH=src $(BIN)/lint-imports --no-cache

clean:  ## remove the venv and run outputs
	rm -rf $(VENV) runs lightning_logs
