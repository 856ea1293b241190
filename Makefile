# Two entry points: `make run` (set up, build everything on embedded defaults, serve on
# 127.0.0.1) and `make test` (the whole suite; `make test-fast` is the part without servers,
# browsers, the bot or slow tests, for while you work). Both install what is missing first, from the locks
# (requirements.lock: what running needs; requirements-test.lock: that and the test tools), made from
# the ranges and pins of pyproject.toml by `make lock`.
VENV     := .venv
HD       := $(VENV)/bin/helpdesk
INSTANCE ?= instance
HOST     ?= 127.0.0.1
PORT     ?= 8000

.PHONY: setup run test test-fast lock screenshots
setup: $(VENV)/.installed $(VENV)/.test-installed node_modules/.installed

# Each step says what it does in one line (pip's own output stays quiet unless something fails).
$(VENV)/.installed: pyproject.toml requirements.lock
	@echo "セットアップ 1/5: Python の仮想環境を作ります（$(VENV)）"
	@python3 -m venv $(VENV)
	@echo "セットアップ 2/5: pip を更新します"
	@$(VENV)/bin/pip install --quiet --upgrade pip
	@echo "セットアップ 3/5: 依存パッケージを固定版とハッシュの一覧（requirements.lock）から入れます。初回は数分かかります"
	@$(VENV)/bin/pip install --quiet --require-hashes -r requirements.lock
	@$(VENV)/bin/pip install --quiet --no-deps -e .
	@$(VENV)/bin/pip uninstall --quiet --yes ja-ginza 2>/dev/null || true  # left by older set-ups (docs/deployment.md)
	@$(VENV)/bin/pip check --quiet
	@echo "セットアップ 4/5: 検索用の単語ベクトルを取得し、ハッシュを確かめます（初回 60 MB）"
	@$(HD) --instance $(INSTANCE) fetch-vectors
	@touch $@

$(VENV)/.test-installed: $(VENV)/.installed requirements-test.lock
	@echo "セットアップ 5/5: テスト用のパッケージ（requirements-test.lock）を入れます"
	@$(VENV)/bin/pip install --quiet --require-hashes -r requirements-test.lock
	@$(VENV)/bin/pip check --quiet
	@touch $@

# The locks, after a change of pyproject.toml's dependencies (uv from PyPI, run without installing it).
lock:
	@python3 -m pip install --quiet --target .lock-tools uv
	@PYTHONPATH=.lock-tools python3 -m uv pip compile pyproject.toml --universal --python-version 3.11 \
	  --generate-hashes --quiet --custom-compile-command "make lock" -o requirements.lock
	@PYTHONPATH=.lock-tools python3 -m uv pip compile pyproject.toml --extra test --universal --python-version 3.11 \
	  --generate-hashes --quiet --custom-compile-command "make lock" -o requirements-test.lock
	@rm -rf .lock-tools

# axe-core for the accessibility tests (npm registry only; no browser download).
node_modules/.installed: package.json package-lock.json
	@echo "セットアップ: アクセシビリティ検査用の axe-core を npm から入れます"
	@npm ci --no-audit --no-fund --silent
	@touch $@

run: $(VENV)/.installed
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
	@$(HD) --instance $(INSTANCE) serve --host $(HOST) --port $(PORT) --log-format text

# The whole suite. Quality tests fail, not skip, without the dev sets in ../shared/eval (tests/quality.py).
test: setup
	HELPDESK_TEST_REQUIRE_EVAL=1 $(VENV)/bin/pytest -n 2

# Under two minutes on 2 CPUs: what the markers (tests/marks.py) leave when servers, Chromium, the
# Telegram bot and the slow tests are taken out.
test-fast: setup
	$(VENV)/bin/pytest -n 2 -m "not server and not browser and not telegram and not slow"

# The README's pictures (docs/screenshots/*.png): the real server in Debian's Chromium.
screenshots: setup
	@echo "スクリーンショットを作ります（docs/screenshots/）"
	@$(VENV)/bin/python scripts/screenshots.py
