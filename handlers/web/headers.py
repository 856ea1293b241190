"""What every HTML page sends besides its body: a Content-Security-Policy, cache rules, and absolute
URLs that never come from the request's Host header.

`public_url(endpoint)` builds a link to this site from PUBLIC_URL, or else from the address the server
was configured to listen on (HOST, PORT), so that `Host: evil.example` cannot put a foreign script on
the demo page, and a cache keyed on the URL alone cannot be poisoned with one. `register(app)` adds an
after_request hook that gives every HTML response a policy (a strict one unless the view set its own;
a view that set only frame-ancestors gets the strict directives added) and keeps pages out of shared
caches, since they may show who is signed in.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, request, url_for

# The directives every page starts from: scripts, styles, frames and fetches from this site only.
STRICT = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "frame-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'self'",
}


def base_url() -> str:
    """This site's address: PUBLIC_URL when set (behind a proxy, over HTTPS), else the listening address."""
    public = current_app.config.get("PUBLIC_URL")
    if public:
        return str(public).rstrip("/")
    host = str(current_app.config.get("HOST") or "127.0.0.1")
    port = int(current_app.config.get("PORT") or 8000)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def public_url(endpoint: str, **values) -> str:
    """An absolute URL of `endpoint` on this site, whatever Host the request named."""
    return base_url() + url_for(endpoint, **values)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def policy(directives: dict[str, str]) -> str:
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def demo_page_policy() -> str:
    """The demo host page loads the widget from this site's public address and frames its chat; its
    own short stylesheet is inline (it stands for someone else's page), so only styles may be inline."""
    site = origin_of(base_url())
    return policy({**STRICT, "script-src": f"'self' {site}", "frame-src": f"'self' {site}",
                   "style-src": "'self' 'unsafe-inline'"})


def with_strict_defaults(existing: str) -> str:
    """A view's own policy (e.g. the frame's frame-ancestors) completed with the strict directives it lacks."""
    named = {part.strip().split(" ", 1)[0].lower(): part.strip() for part in existing.split(";") if part.strip()}
    merged = [named.get(name, f"{name} {value}") for name, value in STRICT.items()]
    merged += [text for name, text in named.items() if name not in STRICT]
    return "; ".join(merged)


def register(app: Flask) -> None:
    @app.after_request
    def html_page_headers(response):
        if response.mimetype != "text/html":
            return response
        existing = response.headers.get("Content-Security-Policy")
        if request.endpoint == "embed.demo":
            response.headers["Content-Security-Policy"] = demo_page_policy()
        elif existing is None:
            response.headers["Content-Security-Policy"] = policy(STRICT)
        elif "default-src" not in existing:
            response.headers["Content-Security-Policy"] = with_strict_defaults(existing)
        if "Cache-Control" not in response.headers:
            # Pages may say who is signed in: never stored by a shared cache, revalidated by the browser.
            response.headers["Cache-Control"] = "private, no-cache"
        response.vary.add("Cookie")
        return response
