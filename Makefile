# Each target creates or reuses the project virtual environment (scripts/venv) first.
.PHONY: run test lint benchmarks
SUITE ?= suites/digits.yaml

run:
	@venv=$$(scripts/venv) && "$$venv/bin/genbench" run $(SUITE)

test:
	@venv=$$(scripts/venv) && "$$venv/bin/python" -m pytest -q

lint:
	@venv=$$(scripts/venv) && "$$venv/bin/ruff" check bench baselines tests && \
	  "$$venv/bin/ruff" format --check bench baselines tests

benchmarks:
	@venv=$$(scripts/venv) && "$$venv/bin/python" -m pytest tests/benchmarks --benchmark-only \
	  --benchmark-columns=min,median,mean,rounds
