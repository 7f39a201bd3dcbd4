# imgsel entry points. `make run` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
REPO_DIR ?= model_repository
# Where `make triton` unpacks the server: build_engines/triton_server.py server_binary(DEFAULT_DEST).
TRITON := .cache/tritonserver/pytriton/tritonserver/bin/tritonserver
# Where `make helm` installs helm v4.3.1 (tools/helm.py DEFAULT_DEST), used by the chart checks in tests/helm.
HELM := .cache/helm/helm

.PHONY: help install venv triton helm helm-check repo models run test test-unit bench loadtest fuzz soak faults lint clean \
        backfill plan

help:
	@echo "make run        install what is missing, build the cpu model repository if absent, start Triton + gateway"
	@echo "make test       the whole test suite (unit + integration against the real tritonserver)"
	@echo "make repo PROFILE=cpu|gpu [PRECISION=int8|fp32] [NSFW=1|0] [TEXT_OVERLAY=1|0] [ANALYZE_INSTANCES=N]   (re)generate the Triton model repository"
	@echo "make models     fine-tune the backbone's last layers, retrain every head, recalibrate int8, from DATA (../shared/data); regenerate the repository"
	@echo "make bench      throughput/latency benchmark of /v1/select vs DALI decode floor -> BENCHMARKS.md numbers"
	@echo "make loadtest   locust, headless, bounded, against a stack it starts"
	@echo "make fuzz       schemathesis on every operation (FUZZ_EXAMPLES per operation) + 1,000 mutated image files"
	@echo "make soak       SOAK_MINUTES (10) of mixed load: RSS of every process and latency over time"
	@echo "make faults     60 s of locust traffic three times: kill -9 tritonserver, one model process, postgres, at 20 s"
	@echo "make backfill MANIFEST=path [OUTPUT=backfill-out] [MODE=curate|index] [WORKERS=2]   catalog backfill / index build (Ray)"
	@echo "make plan MANIFEST=path CATALOG_PRODUCTS=n DEADLINE_HOURS=h [CATEGORY=c] [SAMPLE=50]   size a catalog run from a sample"
	@echo "make lint       ruff"
	@echo "make helm-check helm lint, helm template with several value sets, schemas of Kubernetes 1.28-1.31"
	@echo "make images     podman images of the cpu profile: gateway (docker/Dockerfile), cpu Triton, PostgreSQL+pgvector"
	@echo "make deploy-check  the chart's cpu profile played with podman kube play: /v1/select through 2 gateways"

$(VENV)/.installed: requirements.lock requirements-nodeps.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "imgsel needs Python 3.11, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

venv install: $(VENV)/.installed

$(TRITON): | $(VENV)/.installed
	$(PY) -m build_engines.triton_server

triton: $(TRITON)

$(HELM): | $(VENV)/.installed
	$(PY) -m tools.helm

helm: $(HELM)

helm-check: $(VENV)/.installed $(HELM)
	$(PY) -m pytest -q tests/helm

# Regenerated when the generator, the model code, the trained heads or the categories change.
REPO_INPUTS := $(wildcard build_engines/*.py build_engines/*.json build_engines/triton_python/*.py \
                          build_engines/heads/*.onnx build_engines/heads/*.pt build_engines/heads/*.json preprocessing/*.py \
                          contract/*.py contract/categories.toml)
$(REPO_DIR)/analyze/config.pbtxt: $(REPO_INPUTS) | $(VENV)/.installed
	$(PY) -m build_engines.repository --profile cpu --out $(REPO_DIR) --env-path $(abspath $(VENV))

# PRECISION: the vision model's ONNX precision (empty: int8 for cpu, fp32 for gpu, whose engine build makes FP16).
# NSFW=1 / NSFW=0: serve the nsfw compliance model or not (empty: the profile's default, gpu yes, cpu no).
# TEXT_OVERLAY=1 / TEXT_OVERLAY=0: the same for the text_overlay check (OCR; gpu yes, cpu no).
# ANALYZE_INSTANCES=N: cpu, instances of the one analyze model, one core each (empty: 2, for a 2-core machine).
PRECISION ?=
NSFW ?=
TEXT_OVERLAY ?=
ANALYZE_INSTANCES ?=
repo: $(VENV)/.installed
	$(PY) -m build_engines.repository --profile $(PROFILE) --out $(REPO_DIR) --env-path $(abspath $(VENV)) \
	  $(if $(PRECISION),--precision $(PRECISION)) $(if $(filter 1,$(NSFW)),--nsfw) $(if $(filter 0,$(NSFW)),--no-nsfw) \
	  $(if $(filter 1,$(TEXT_OVERLAY)),--text-overlay) $(if $(filter 0,$(TEXT_OVERLAY)),--no-text-overlay) \
	  $(if $(ANALYZE_INSTANCES),--analyze-instances $(ANALYZE_INSTANCES))

DATA ?= ../shared/data
models: $(VENV)/.installed
	@if [ -f $(DATA)/catalog/manifest.csv ]; then \
	  $(PY) -m training.finetune_backbone --grocery $(DATA)/grocery --catalog $(DATA)/catalog/manifest.csv && \
	  $(PY) -m training.type_heads --category apparel --manifest $(DATA)/catalog/manifest.csv && \
	  $(PY) -m training.quality_heads --data $(DATA) && \
	  $(PY) -m training.category_head --grocery $(DATA)/grocery --catalog $(DATA)/catalog/manifest.csv \
	    --ood $(DATA)/placeholders && \
	  $(PY) -m training.search_head --data $(DATA) && \
	  $(PY) -m build_engines.vision calibrate --data $(DATA); \
	else echo "$(DATA) absent: keeping the committed heads in build_engines/heads/"; fi
	$(MAKE) repo PROFILE=$(PROFILE)

run: $(VENV)/.installed $(TRITON) $(REPO_DIR)/analyze/config.pbtxt
	exec $(PY) -m tools.launcher

test: $(VENV)/.installed $(TRITON) $(HELM)
	$(PY) -m pytest -q

test-unit: $(VENV)/.installed
	$(PY) -m pytest -q -m "not integration"

bench: $(VENV)/.installed $(TRITON) $(REPO_DIR)/analyze/config.pbtxt
	$(PY) -m loadtest.bench

loadtest: $(VENV)/.installed $(TRITON) $(REPO_DIR)/analyze/config.pbtxt
	$(PY) -m loadtest.run_locust

FUZZ_EXAMPLES ?= 100
FUZZ_FILES ?= 1000
fuzz: $(VENV)/.installed $(TRITON) $(REPO_DIR)/analyze/config.pbtxt
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q tests/integration/test_fuzz_api.py
	$(PY) -m loadtest.decoder_fuzz --count $(FUZZ_FILES)

SOAK_MINUTES ?= 10
soak: $(VENV)/.installed $(TRITON) $(REPO_DIR)/analyze/config.pbtxt
	$(PY) -m loadtest.soak --minutes $(SOAK_MINUTES)

faults: $(VENV)/.installed $(TRITON) $(REPO_DIR)/analyze/config.pbtxt
	$(PY) -m loadtest.fault_run

# Catalog backfill and index builds on Ray Data (backfill/), against the embedded stack: the embedded PostgreSQL of
# IMGSEL_DATA_DIR (the one `make run` uses) and a Triton started on free ports unless one answers on IMGSEL_TRITON_HTTP_PORT.
MANIFEST ?=
OUTPUT ?= backfill-out
MODE ?= curate
WORKERS ?= 2
SAMPLE ?= 50
CATEGORY ?=
CATALOG_PRODUCTS ?=
DEADLINE_HOURS ?=
backfill: $(VENV)/.installed $(TRITON) $(REPO_DIR)/analyze/config.pbtxt
	@test -n "$(MANIFEST)" || { echo "usage: make backfill MANIFEST=path [OUTPUT=dir] [MODE=curate|index] [WORKERS=n]"; exit 2; }
	$(PY) -m backfill run $(MANIFEST) --output $(OUTPUT) --mode $(MODE) --workers $(WORKERS) --local-stack

plan: $(VENV)/.installed $(TRITON) $(REPO_DIR)/analyze/config.pbtxt
	@test -n "$(MANIFEST)" -a -n "$(CATALOG_PRODUCTS)" -a -n "$(DEADLINE_HOURS)" || { echo "usage: make plan \
	  MANIFEST=path CATALOG_PRODUCTS=n DEADLINE_HOURS=h [CATEGORY=c] [SAMPLE=n] [WORKERS=n]"; exit 2; }
	$(PY) -m backfill plan $(MANIFEST) --sample $(SAMPLE) $(if $(CATEGORY),--category $(CATEGORY)) --workers $(WORKERS) \
	  --catalog-products $(CATALOG_PRODUCTS) --deadline-hours $(DEADLINE_HOURS) --local-stack

lint: $(VENV)/.installed
	$(PY) -m ruff check .

# Container images of the chart's cpu profile with podman, no registry (tools/images.py): installs podman, mmdebstrap
# and runc from Debian packages if missing, makes the base image with mmdebstrap and a wheelhouse from the lock.
.PHONY: images deploy-check
images: $(VENV)/.installed
	$(PY) -m tools.images

# Renders the chart with values-cpu.yaml, plays it with `podman kube play --network host`, waits for every
# container's readiness, checks /v1/select through two gateway replicas sharing the database, tears it all down.
deploy-check: images $(HELM)
	$(PY) -m loadtest.deploy_check --gateways 2 --json loadtest/results/deploy_check.json

clean:
	rm -rf $(REPO_DIR)/*/ $(REPO_DIR)/PROFILE .pytest_cache
