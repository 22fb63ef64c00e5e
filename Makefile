# The two commands of the README. Both install first, so nothing installed by hand can hide a missing step.
.PHONY: install demo test lint

install:
	bash scripts/install.sh

demo: install
	bash scripts/demo.sh

test: install
	bash scripts/test.sh

lint:
	.venv/bin/ruff check conftool meeting tests bench
	.venv/bin/mypy
