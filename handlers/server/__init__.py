"""Serving the web app under a production WSGI server (gunicorn or waitress) and its per-client limits."""
