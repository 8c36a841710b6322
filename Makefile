# The two commands of the README. Both do the set-up themselves.
.PHONY: setup demo test sanity units lint

setup:
	./scripts/setup

demo:
	./scripts/demo

test:
	./scripts/test

sanity: setup
	./scripts/sanity

units: setup
	.venv/bin/python -m pytest tests/unit -q

lint: setup
	.venv/bin/ansible-lint --profile production
