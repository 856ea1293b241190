"""When will a newly filed clinic appear in the MAMIS institution master?

MAMIS LETTER No. 15 (Topic 08) gives the mechanism but not every number; the
missing ones are assumptions, stated here and in docs/records.md:

1. Bureau publication (assumption): the regional bureau (厚生局) publishes a
   filing within the month after the month of filing (between the 1st and the
   last day of that month).
2. Vendor delivery (letter: around the 25th of each month; assumption: the
   vendor's collection closes on the 15th). A publication on day P reaches the
   first delivery on a 25th whose month's 15th is not before P.
3. JMA update (letter): on a weekend night between the end of the month of
   receipt and the first half of the next month. Assumption: the candidate
   nights are Saturday and Sunday nights from the 26th of the month of receipt
   (the day after delivery) to the 15th of the next month, skipping Japanese
   public holidays (jpholiday) and the New Year closure (12/29–1/3).

The window runs from the first candidate night after the earliest delivery to the
last candidate night after the latest delivery; the master shows the change from
the morning after. With these rules the window closes 2–3½ months after the
filing, consistent with the letter's "about 2–3 months"; it may open after one.

Real deliveries: once the vendor's master has been imported, its rows carry the month
of their delivery (配信月), and the latest one is a fact, not an assumption. A clinic
the help desk still lists as waiting was not in that delivery, so its window cannot
open before the update nights after the next one (assumed on the 25th of the following
month); and if that delivery was already the last it should have been in, it is late
now, whatever the calendar says. Without imported delivery months (the demo, a file
without 配信月) the estimate is the assumption alone.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

import jpholiday

COLLECTION_CLOSES_DAY = 15
DELIVERY_DAY = 25
UPDATE_FROM_DAY = DELIVERY_DAY + 1
UPDATE_UNTIL_DAY = 15


@dataclass(frozen=True)
class UpdateWindow:
    """The estimated window of master update nights for a waiting institution."""
    filed_on: date
    publication_from: date
    publication_until: date
    delivery_from: date
    delivery_until: date
    earliest_night: date
    latest_night: date
    #: The latest delivery imported (its month's 25th), when the estimate read one.
    latest_delivery: date | None = None
    #: True when the latest imported delivery was at or after the last one it should have been in.
    missed: bool = False

    @property
    def visible_from(self) -> date:
        """First morning the institution can be in the master."""
        return self.earliest_night + timedelta(days=1)

    @property
    def visible_by(self) -> date:
        """Morning by which it should be in the master, if the assumptions hold."""
        return self.latest_night + timedelta(days=1)

    def overdue(self, today: date) -> bool:
        """Past the window, or missing from the delivery it should have been in: time to ask the desk."""
        return self.missed or today > self.visible_by


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def _last_day(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def is_update_night(day: date) -> bool:
    """A Saturday or Sunday that is neither a public holiday nor in the New Year closure."""
    if day.weekday() < 5:
        return False
    if jpholiday.is_holiday(day):
        return False
    if (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3):
        return False
    return True


def update_nights(delivery: date) -> list[date]:
    """Candidate update nights after a delivery: from the 26th to the 15th of the next month."""
    start = delivery.replace(day=UPDATE_FROM_DAY)
    y, m = _add_months(delivery.year, delivery.month, 1)
    end = date(y, m, UPDATE_UNTIL_DAY)
    nights = []
    day = start
    while day <= end:
        if is_update_night(day):
            nights.append(day)
        day += timedelta(days=1)
    return nights


def first_delivery_after(published: date) -> date:
    """The first vendor delivery (a 25th) that includes a publication on `published`."""
    y, m = published.year, published.month
    if published.day > COLLECTION_CLOSES_DAY:
        y, m = _add_months(y, m, 1)
    return date(y, m, DELIVERY_DAY)


def delivery_of_month(month: str) -> date:
    """The delivery of a master month as the file names it (「2026-10」 → 2026-10-25)."""
    year, mon = month.split("-")
    return date(int(year), int(mon), DELIVERY_DAY)


def estimate_window(filed_on: date, latest_delivery: date | None = None) -> UpdateWindow:
    """Estimated master update window for a clinic that filed with the bureau on `filed_on` and that
    was not in `latest_delivery`, the latest master delivery imported (None: none imported)."""
    y, m = _add_months(filed_on.year, filed_on.month, 1)
    pub_from, pub_until = date(y, m, 1), _last_day(y, m)
    delivery_from = first_delivery_after(pub_from)
    delivery_until = first_delivery_after(pub_until)
    missed = False
    if latest_delivery is not None:
        ny, nm = _add_months(latest_delivery.year, latest_delivery.month, 1)
        next_delivery = date(ny, nm, DELIVERY_DAY)
        missed = latest_delivery >= delivery_until
        delivery_from = max(delivery_from, next_delivery)
        delivery_until = max(delivery_until, next_delivery)
    earliest = update_nights(delivery_from)[0]
    latest = update_nights(delivery_until)[-1]
    return UpdateWindow(filed_on, pub_from, pub_until, delivery_from, delivery_until, earliest, latest,
                        latest_delivery, missed)
