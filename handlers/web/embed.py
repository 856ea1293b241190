"""Routes for the chat widget; the widget's own files (widget.js, frame.*, demo.html) live in static/
and templates/ and are written separately.

`/widget.js` is the one script tag a host page adds; `/widget/frame` is the chat inside the iframe it
opens, and may only be framed by this site and the origins in ALLOWED_ORIGINS.
"""
from __future__ import annotations

from flask import Blueprint, current_app, make_response, render_template, send_from_directory

from handlers.web.headers import public_url

bp = Blueprint("embed", __name__)


@bp.get("/")
def demo():
    # Never from the request's Host header (handlers/web/headers.py): PUBLIC_URL or the listening address.
    return render_template("demo.html", widget_src=public_url("embed.widget_js"))


@bp.get("/widget.js")
def widget_js():
    response = send_from_directory(
        current_app.static_folder, "widget.js", mimetype="text/javascript",
        max_age=int(current_app.config["WIDGET_MAX_AGE"]),
    )
    # Host pages on other origins load this script; let them even under a strict embedder policy.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@bp.get("/favicon.ico")
def favicon():
    """A small icon, so browsers asking for it on every page get one instead of a 404."""
    return send_from_directory(current_app.static_folder, "favicon.ico", mimetype="image/vnd.microsoft.icon",
                               max_age=86400)


@bp.get("/widget/frame")
def frame():
    response = make_response(render_template("frame.html", api_base=""))
    ancestors = " ".join(["'self'", *current_app.config["ALLOWED_ORIGINS"]])
    response.headers["Content-Security-Policy"] = f"frame-ancestors {ancestors}"
    response.headers["Cache-Control"] = "no-cache"
    return response
