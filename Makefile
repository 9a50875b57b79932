# The two commands of the README. Each sets itself up (idempotently) in .venv first.
.PHONY: serve test

serve:
	@scripts/setup.sh serve
	@.venv/bin/answer-engine serve

test:
	@scripts/setup.sh test
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/python -m pytest -q
