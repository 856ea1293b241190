# Two entry points: `make run` (set up, build everything on embedded defaults, serve on
# 127.0.0.1) and `make test` (the whole suite). Both install what is missing first.
VENV     := .venv
HD       := $(VENV)/bin/helpdesk
INSTANCE ?= instance
HOST     ?= 127.0.0.1
PORT     ?= 8000
# The pins of [tool.helpdesk] data-packages in pyproject.toml (installed with --no-deps).
DATA_PACKAGES := import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['tool']['helpdesk']['data-packages'])

.PHONY: setup run test screenshots
setup: $(VENV)/.installed node_modules/.installed

# Each step says what it does in one line (pip's own output stays quiet unless something fails).
$(VENV)/.installed: pyproject.toml
	@echo "セットアップ 1/4: Python の仮想環境を作ります（$(VENV)）"
	@python3 -m venv $(VENV)
	@echo "セットアップ 2/4: pip を更新します"
	@$(VENV)/bin/pip install --quiet --upgrade pip
	@echo "セットアップ 3/4: 依存パッケージ（pyproject.toml の固定版）を入れます。初回は数分かかります"
	@$(VENV)/bin/pip install --quiet -e '.[test]'
	@echo "セットアップ 4/4: 検索用の単語ベクトル（pyproject.toml の data-packages）を入れます"
	@$(VENV)/bin/pip install --quiet --no-deps $$($(VENV)/bin/python -c "$(DATA_PACKAGES)")
	@touch $@

# axe-core for the accessibility tests (npm registry only; no browser download).
node_modules/.installed: package.json package-lock.json
	@echo "セットアップ: アクセシビリティ検査用の axe-core を npm から入れます"
	@npm ci --no-audit --no-fund --silent
	@touch $@

run: setup
	@echo "起動 1/4: 記事の検索索引を作ります（変更のあった記事だけ）"
	@$(HD) --instance $(INSTANCE) index
	@if [ -f $(INSTANCE)/records.sqlite ]; then echo "起動 2/4: 会員データ（$(INSTANCE)/records.sqlite）はあるので、そのまま使います"; \
	else echo "起動 2/4: デモ用の架空の会員データを作ります（10秒ほど）"; $(HD) --instance $(INSTANCE) demo-data; fi
	@echo "起動 3/4: デモ用の職員アカウント（パスワードはこのインスタンスで固定）"
	@$(HD) --instance $(INSTANCE) demo-accounts
	@$(HD) --instance $(INSTANCE) agent demo
	@if [ -n "$$TELEGRAM_BOT_TOKEN" ]; then $(HD) --instance $(INSTANCE) telegram & \
	else echo "Telegram ボットも動かすには TELEGRAM_BOT_TOKEN=<BotFather のトークン> make run としてください（docs/telegram.md）。"; fi
	@echo "起動 4/4: ヘルプデスクを起動します: http://$(HOST):$(PORT)/"
	@$(HD) --instance $(INSTANCE) serve --host $(HOST) --port $(PORT)

test: setup
	$(VENV)/bin/pytest -n 2

# The README's pictures (docs/screenshots/*.png): the real server in Debian's Chromium.
screenshots: setup
	@echo "スクリーンショットを作ります（docs/screenshots/）"
	@$(VENV)/bin/python scripts/screenshots.py
