# The verbs of llmproxy. Every target installs what it needs; see README.md.
SHELL := /bin/bash
export LLMPROXY_CACHE ?= $(HOME)/.cache/llmproxy

.PHONY: help deps build test test-unit lint dev bench bench-ledger crds prices chart controlplane test-deps clean

help: ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.package-lock.json ## install npm packages

build: deps ## compile TypeScript to dist/
	npm run --silent build

test-deps: deps ## install the real services the tests start (moto, redis-server, control plane)
	bash test/support/install.sh

test: test-deps build ## install everything the tests need, then run every test
	npm test

test-unit: deps ## unit tests only (no services)
	npm test -- --selectProjects unit

lint: deps ## typecheck, eslint, prettier, secretlint
	npm run --silent typecheck
	npm run --silent lint

dev: build ## the main job: run llmproxy locally and print what to try
	node --import tsx test/dev/main.ts

bench: test-deps build ## measure the sidecar against a bare pass-through (docs/benchmarks.md)
	node --import tsx test/bench/main.ts

bench-ledger: test-deps build ## the budget ledger under load: simulated sidecars, a real operator and API server
	node --import tsx test/bench/ledger.ts

crds: deps ## regenerate crds/*.yaml, the chart's copy and the sidecar's CompiledPolicy check from their schemas
	node --import tsx crds/generate.ts
	node --import tsx sidecar/policy/generate.ts

prices: deps ## regenerate the sidecar's price table from @pydantic/genai-prices (after upgrading it)
	node --import tsx sidecar/metering/generate-prices.ts

chart: deps ## lint and render the Helm chart with the pinned helm (its e2e tests: make test)
	bash test/controlplane/build.sh
	$(LLMPROXY_CACHE)/bin/helm lint --strict helm/llmproxy
	$(LLMPROXY_CACHE)/bin/helm template llmproxy helm/llmproxy --namespace llmproxy-system > /dev/null
	@echo "chart OK: helm/llmproxy lints strictly and renders"

controlplane: ## build pinned kube-apiserver, etcd, kubectl and helm into $(LLMPROXY_CACHE)/bin
	bash test/controlplane/build.sh

clean:
	rm -rf dist coverage
