"""A procedure's history as a row of dated steps, and back (applications and reports share it).

A spreadsheet row has one cell per step (提出日, 郡市区等医師会承認日, 差戻し日, …), and so does
the stored row (`step_cells`), while the lookups show a history of events. `events_from_steps`
orders the dated steps as they happened (same-day steps in the order the procedure takes them);
`steps_from_events` folds a history of events back into the cells, keeping each step's latest
date (the demo generates histories as events).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    column: str        # the file's column key holding the step's date
    level: str | None  # who acts; None for a return, whose level is its own column (差戻し元)
    action: str


def step_cells(steps: tuple[Step, ...], dates: tuple[str | None, ...], returned_by: str | None,
               reason: str | None) -> dict[str, str | None]:
    """The dated columns of a stored row, as statement parameters: one per step, 差戻し元 and the reason."""
    return {**{step.column: on for step, on in zip(steps, dates)}, "returned_by": returned_by,
            "return_reason": reason}


def events_from_steps(steps: tuple[Step, ...], dates: tuple[str | None, ...], returned_by: str | None,
                      reason: str | None) -> list[tuple]:
    """(happened_on, level, action, reason) for each dated step, in the order they happened."""
    events = []
    for order, (step, on) in enumerate(zip(steps, dates)):
        if on is None:
            continue
        if step.level is None:
            if returned_by is None:
                continue
            events.append((on, order, returned_by, step.action, reason))
        else:
            events.append((on, order, step.level, step.action, None))
    events.sort()
    return [(on, level, action, why) for on, _order, level, action, why in events]


def steps_from_events(steps: tuple[Step, ...], events: list[tuple]) -> tuple[tuple[str | None, ...], str | None,
                                                                          str | None]:
    """The dated cells of a history (each step's latest date), the returning level and the last reason."""
    dates: dict[str, str] = {}
    returned_by = reason = None
    for on, level, action, why in events:
        for step in steps:
            if step.action == action and step.level in (level, None):
                dates[step.column] = on
                if step.level is None:
                    returned_by, reason = level, why
                break
    return tuple(dates.get(s.column) for s in steps), returned_by, reason
