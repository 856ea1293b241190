"""Insight pages of the desk console (/desk/insights): what to write next, and how the help desk does."""
from __future__ import annotations

from flask import Blueprint

from handlers.desk_auth import agent_required


@agent_required
def overview():
    from handlers.desk import render

    return render("desk/insights.html")


def create_blueprint() -> Blueprint:
    bp = Blueprint("desk_insights", __name__, url_prefix="/desk/insights")
    bp.add_url_rule("/", view_func=overview, endpoint="overview")
    return bp
