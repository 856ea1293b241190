# Two entry points: `make run` (set up, build everything on embedded defaults, serve on
# 127.0.0.1) and `make test` (the whole suite). Both install what is missing first.
VENV     := .venv
HD       := $(VENV)/bin/helpdesk
INSTANCE ?= instance
HOST     ?= 127.0.0.1
PORT     ?= 8000

.PHONY: setup run test
setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

# axe-core for the accessibility tests (npm registry only; no browser download).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

run: setup
	$(HD) --instance $(INSTANCE) index
	test -f $(INSTANCE)/records.sqlite || $(HD) --instance $(INSTANCE) demo-data
	$(HD) --instance $(INSTANCE) demo-accounts
	@if [ -n "$$TELEGRAM_BOT_TOKEN" ]; then $(HD) --instance $(INSTANCE) telegram & \
	else echo "Telegram ボットも動かすには TELEGRAM_BOT_TOKEN=<BotFather のトークン> make run としてください（docs/telegram.md）。"; fi
	$(HD) --instance $(INSTANCE) serve --host $(HOST) --port $(PORT)

test: setup
	$(VENV)/bin/pytest -n 2
