# Shortcuts; the README's two commands are `bash scripts/demo.sh` and `bash scripts/test.sh`.
.PHONY: install demo test lint

install:
	bash scripts/install.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

lint:
	.venv/bin/ruff check conftool meeting tests bench
	.venv/bin/mypy
