# MAMIS help desk: the web server (and, with another command, the Telegram process) in one image.
# The same set-up steps as `make run` (see Makefile and README): install the dependencies from the lock
# (hashes checked), the package itself as a wheel, fetch the word vectors; at start, build the index,
# then serve. tests/test_ops_docker.py keeps the two in step; tests/test_ops_wheel.py runs the
# entrypoint against the installed wheel.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    INSTANCE=/var/lib/helpdesk \
    HELPDESK_VECTORS_PATH=/opt/helpdesk/vectors \
    HOST=0.0.0.0 \
    PORT=8000

WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
COPY kb ./kb
COPY release_notes ./release_notes
COPY bot ./bot
COPY handlers ./handlers
COPY helpdesk ./helpdesk
COPY records ./records
COPY storage ./storage
COPY deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh

RUN pip install --quiet --upgrade pip \
 && pip install --quiet --no-cache-dir --require-hashes -r requirements.lock \
 && pip install --quiet --no-cache-dir --no-deps . \
 && pip check \
 && helpdesk --instance "$INSTANCE" fetch-vectors \
 && useradd --system --create-home --home-dir /home/helpdesk --uid 10001 helpdesk \
 && mkdir -p "$INSTANCE" && chown helpdesk:helpdesk "$INSTANCE"

USER helpdesk
VOLUME ["/var/lib/helpdesk"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz', timeout=4)"

ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["serve"]
