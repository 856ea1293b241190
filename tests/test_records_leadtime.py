"""The institution master window, around month ends, year ends, holidays and leap days."""
from datetime import date

import pytest

from records.leadtime import (estimate_window, first_delivery_after, is_update_night,
                              update_nights)


def test_window_for_a_filing_in_october():
    w = estimate_window(date(2026, 10, 5))
    assert (w.publication_from, w.publication_until) == (date(2026, 11, 1), date(2026, 11, 30))
    assert (w.delivery_from, w.delivery_until) == (date(2026, 11, 25), date(2026, 12, 25))
    # First weekend night after the November delivery; last one before 15 January,
    # skipping the New Year closure (2–3 January 2027 are a weekend).
    assert (w.earliest_night, w.latest_night) == (date(2026, 11, 28), date(2027, 1, 10))
    assert (w.visible_from, w.visible_by) == (date(2026, 11, 29), date(2027, 1, 11))


@pytest.mark.parametrize("filed, earliest, latest", [
    # month end vs first of the next month: a day apart, a month apart in publication
    (date(2026, 1, 31), date(2026, 2, 28), date(2026, 4, 12)),
    (date(2026, 2, 1), date(2026, 3, 28), date(2026, 5, 10)),
    # year end: December filing → January publication → deliveries in January and February
    (date(2026, 12, 31), date(2027, 1, 30), date(2027, 3, 14)),
    (date(2026, 11, 30), date(2026, 12, 26), date(2027, 2, 14)),
    # leap day
    (date(2028, 2, 29), date(2028, 3, 26), date(2028, 5, 14)),
])
def test_windows_around_month_and_year_ends(filed, earliest, latest):
    w = estimate_window(filed)
    assert (w.earliest_night, w.latest_night) == (earliest, latest)
    assert is_update_night(w.earliest_night) and is_update_night(w.latest_night)
    assert w.filed_on < w.publication_from <= w.delivery_from < w.earliest_night


def test_window_length_matches_the_letters_two_to_three_months():
    for month in range(1, 13):
        w = estimate_window(date(2026, month, 15))
        days = (w.visible_by - w.filed_on).days
        assert 60 <= days <= 110, (month, days)


def test_new_year_closure_and_public_holidays_are_skipped():
    assert update_nights(date(2026, 12, 25)) == [
        date(2026, 12, 26), date(2026, 12, 27), date(2027, 1, 9), date(2027, 1, 10)]
    nights = update_nights(date(2026, 4, 25))
    assert date(2026, 5, 3) not in nights  # 憲法記念日 falls on a Sunday
    assert date(2026, 5, 2) in nights
    assert not is_update_night(date(2026, 5, 3))
    assert not is_update_night(date(2027, 1, 2))  # Saturday, but the office is closed
    assert not is_update_night(date(2026, 11, 30))  # a Monday


@pytest.mark.parametrize("published, delivery", [
    (date(2026, 3, 15), date(2026, 3, 25)),   # collection closes on the 15th: still in
    (date(2026, 3, 16), date(2026, 4, 25)),   # one day later: next month's delivery
    (date(2026, 12, 31), date(2027, 1, 25)),  # across the year end
])
def test_first_delivery_after_publication(published, delivery):
    assert first_delivery_after(published) == delivery


def test_overdue_only_after_the_window():
    w = estimate_window(date(2026, 10, 5))
    assert not w.overdue(date(2027, 1, 11))
    assert w.overdue(date(2027, 1, 12))
