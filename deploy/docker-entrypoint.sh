#!/bin/sh
# The container's start: the steps of `make run`, on the instance volume.
#   serve      build or update the index (unchanged files are skipped), then run the web server
#   telegram   run the Telegram process (TELEGRAM_BOT_TOKEN in the environment)
#   backup     `helpdesk backup --daily` into BACKUP_DIR (set HELPDESK_BACKUP_DIR)
#   anything else is passed to `helpdesk` (e.g. `purge`, `person export --member 1234567`)
# HELPDESK_DEMO=1 loads the fictional demo data and demo accounts, as `make run` does.
set -eu
umask 077  # databases, backups and logs readable by the container user only (as UMask=0077 in deploy/*.service)
INSTANCE="${INSTANCE:-/var/lib/helpdesk}"
case "${1:-serve}" in
  serve)
    helpdesk --instance "$INSTANCE" index
    if [ "${HELPDESK_DEMO:-0}" = "1" ]; then
      test -f "$INSTANCE/records.sqlite" || helpdesk --instance "$INSTANCE" demo-data
      helpdesk --instance "$INSTANCE" demo-accounts
      helpdesk --instance "$INSTANCE" agent demo
    fi
    # As `make run`: the bot beside the server when a token is set (a separate container with the
    # `telegram` command is the better choice in production: it restarts on its own).
    if [ -n "${TELEGRAM_BOT_TOKEN:-}" ]; then helpdesk --instance "$INSTANCE" telegram & fi
    exec helpdesk --instance "$INSTANCE" serve --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}" \
      --workers "${WORKERS:-2}"
    ;;
  telegram) shift; exec helpdesk --instance "$INSTANCE" telegram "$@" ;;
  backup) exec helpdesk --instance "$INSTANCE" backup --daily ;;
  *) exec helpdesk --instance "$INSTANCE" "$@" ;;
esac
