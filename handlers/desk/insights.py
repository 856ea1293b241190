"""Insight pages of the desk console (/desk/insights): what to write next, and how the help desk does.

Charts are SVG drawn on the server by pygal (pinned in pyproject.toml) and served by the app as images:
nothing is fetched from the internet (pygal's tooltip script is switched off, and an <img> runs no
script anyway). Every chart has its numbers in a table beside it, for screen readers and for copying.
"""
from __future__ import annotations

import math
from datetime import date, timedelta

import pygal
from flask import Blueprint, Response, abort, current_app, request
from pygal.style import Style

from bot.desk.insights import Insights, draft_article
from bot.channels import CHANNELS
from handlers.desk.auth import agent_required, desk_services
from handlers.desk.view import render

PERIODS = {"7": "7日間", "30": "30日間", "90": "90日間", "365": "1年間"}
CHART_STYLE = Style(background="#ffffff", plot_background="#ffffff", foreground="#1a1a1a",
                    foreground_strong="#1a1a1a", foreground_subtle="#4a4a4a", colors=("#0b4f8a", "#a34700", "#2f5d2f"),
                    font_family="'Noto Sans JP', 'Hiragino Sans', Meiryo, sans-serif", label_font_size=12,
                    major_label_font_size=12, value_font_size=12, legend_font_size=13, title_font_size=15)


def period():
    """(days, first day, today, since as stored) for the ?days= the page was asked for (default 30)."""
    days = request.args.get("days", "30")
    days = days if days in PERIODS else "30"
    today = date.fromisoformat(desk_services().handoff.now()[:10])  # today in Japan
    first = today - timedelta(days=int(days) - 1)
    return days, first, today, first.isoformat()


def insights() -> Insights:
    return Insights(desk_services().handoff.store)


def article_titles() -> dict[str, str]:
    try:
        return {a.slug: a.title for a in current_app.extensions["helpdesk"].searcher().articles()}
    except Exception:  # no index and no articles: show slugs
        return {}


@agent_required
def overview():
    days, first, today, since = period()
    ins = insights()
    per_day = ins.tickets_per_day(first, today)
    first_response, resolution = ins.response_minutes(since)
    return render("desk/insights.html", days=days, PERIODS=PERIODS, deflection=ins.deflection(since),
                  per_day=per_day, tickets=sum(n for _d, n in per_day), by_channel=ins.tickets_by_channel(since),
                  feedback=ins.feedback_per_article(since), titles=article_titles(),
                  groups=ins.articles_to_write(since)[:30], first_response=first_response, resolution=resolution)


@agent_required
def draft(key: str):
    days, _first, today, since = period()
    group = next((g for g in insights().articles_to_write(since) if g.key == key), None)
    if group is None:
        abort(404)
    text = draft_article(group, today)
    if request.args.get("download"):
        return Response(text, mimetype="text/markdown", headers={
            "Content-Disposition": f"attachment; filename=draft-{key}.md", "Cache-Control": "no-store"})
    return render("desk/draft.html", group=group, text=text, key=key, days=days)


def svg(chart) -> Response:
    response = Response(chart.render(), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


def base_chart(kind, title: str):
    # Labels whole (pygal cuts a long one to 「1…」), day labels slanted so that they fit.
    return kind(style=CHART_STYLE, js=[], width=760, height=360, title=title, show_legend=False,
                disable_xml_declaration=False, print_values=False, truncate_label=-1, x_label_rotation=-40)


def count_axis(chart, *series: list[int]) -> None:
    """The value axis of `chart` in whole steps from 0: its data are counts, and pygal's own axis
    counts 0, 0.1, 0.2 … for a few tickets."""
    top = max([0, *(n for values in series for n in values)])
    step = max(1, math.ceil(top / 8))
    chart.y_labels = list(range(0, top + step + 1, step))


@agent_required
def chart(name: str):
    days, first, today, since = period()
    ins = insights()
    if name == "per-day":
        data = ins.tickets_per_day(first, today)
        c = base_chart(pygal.Bar, f"1日あたりの問い合わせ（{PERIODS[days]}）")
        c.x_labels = [d[5:].replace("-", "/") for d, _n in data]
        c.x_labels_major_every = max(1, len(data) // 10)
        c.show_minor_x_labels = False
        c.add("問い合わせ", [n for _d, n in data])
        count_axis(c, [n for _d, n in data])
    elif name == "by-channel":
        c = base_chart(pygal.HorizontalBar, f"チャネル別の問い合わせ（{PERIODS[days]}）")
        rows = ins.tickets_by_channel(since)
        c.x_labels = [CHANNELS.get(ch, ch) for ch, _n in rows]
        c.add("問い合わせ", [n for _ch, n in rows])
        count_axis(c, [n for _ch, n in rows])
    elif name == "feedback":
        rows = ins.feedback_per_article(since)[:10]
        titles = article_titles()
        c = base_chart(pygal.HorizontalStackedBar, f"記事ごとの評価（{PERIODS[days]}・上位10件）")
        c.show_legend = True
        c.x_labels = [titles.get(r["slug"], r["slug"])[:24] for r in rows]
        c.add("役に立った", [r["helpful"] for r in rows])
        c.add("役に立たなかった", [r["not_helpful"] for r in rows])
        count_axis(c, [r["helpful"] + r["not_helpful"] for r in rows])
    else:
        abort(404)
    return svg(c)


def create_blueprint() -> Blueprint:
    bp = Blueprint("desk_insights", __name__, url_prefix="/desk/insights")
    bp.add_url_rule("/", view_func=overview, endpoint="overview", strict_slashes=False)  # see handlers/desk/console.py
    bp.add_url_rule("/drafts/<key>", view_func=draft)
    bp.add_url_rule("/charts/<name>.svg", view_func=chart)
    return bp
