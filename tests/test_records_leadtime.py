"""The institution master window, around month ends, year ends, holidays and leap days."""
from datetime import date
from pathlib import Path

import pytest

from bot.desk.hours import BusinessHours
from bot.lookups.replies import institution_next
from records.access import Asker
from records.importer import run_import
from records.kinds import KINDS
from records.lookup import Records

from records.leadtime import (delivery_of_month, estimate_window, first_delivery_after, is_update_night,
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


def test_a_delivery_before_the_window_changes_nothing():
    assumed = estimate_window(date(2026, 10, 5))
    w = estimate_window(date(2026, 10, 5), latest_delivery=date(2026, 10, 25))
    assert (w.delivery_from, w.delivery_until, w.earliest_night, w.latest_night) == (
        assumed.delivery_from, assumed.delivery_until, assumed.earliest_night, assumed.latest_night)
    assert (w.latest_delivery, w.missed) == (date(2026, 10, 25), False)


def test_a_waiting_clinic_was_not_in_the_latest_delivery_so_its_window_opens_after_the_next():
    # Filed 2026-10-05: assumed deliveries November and December. The November master came without it.
    w = estimate_window(date(2026, 10, 5), latest_delivery=date(2026, 11, 25))
    assert (w.delivery_from, w.delivery_until) == (date(2026, 12, 25), date(2026, 12, 25))
    assert (w.earliest_night, w.latest_night) == (date(2026, 12, 26), date(2027, 1, 10))
    assert not w.missed and not w.overdue(date(2026, 12, 1))


def test_missing_from_the_last_delivery_it_should_have_been_in_is_overdue_at_once():
    w = estimate_window(date(2026, 10, 5), latest_delivery=date(2026, 12, 25))
    assert w.missed and w.overdue(date(2026, 12, 26))  # the calendar window alone would wait until 2027-01-11
    assert (w.delivery_from, w.earliest_night, w.latest_night) == (
        date(2027, 1, 25), date(2027, 1, 30), date(2027, 2, 14))


def test_delivery_of_a_master_month():
    assert delivery_of_month("2026-10") == date(2026, 10, 25)


EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "institutions.csv"


def _import_with_delivery(tmp_path, month: str | None) -> Path:
    """The example master with its first row delivered in `month` (None: no 配信月 anywhere)."""
    header, *rows = EXAMPLE.read_text(encoding="utf-8").splitlines()
    column = header.split(",").index("配信月")
    out = []
    for i, line in enumerate(rows):
        cells = line.split(",")
        cells[column] = month if (month and i == 0) else ""
        out.append(",".join(cells))
    path = tmp_path / "institutions.csv"
    path.write_text("\n".join([header, *out]) + "\n", encoding="utf-8")
    db = tmp_path / "records.sqlite"
    run_import(db, path, "full", KINDS["institutions"])
    return db


@pytest.mark.parametrize("month, nights, overdue, advice", [
    # No delivery month imported: the documented assumption.
    (None, (date(2026, 11, 28), date(2027, 1, 10)), False, "（目安）。"),
    # The November master came without it: the window opens after the December delivery.
    ("2026-11", (date(2026, 12, 26), date(2027, 1, 10)), False,
     "（目安）。2026年11月納品分のマスタには載っていません。"),
    # The December master, the last it should have been in, came without it: ask the desk now.
    ("2026-12", (date(2027, 1, 30), date(2027, 2, 14)), True,
     "2026年12月納品分のマスタには載っていません。その納品分までに載る見込みだったため、"
     "MAMIS運営事務局（フリーダイヤル 0120-110-030、平日9:00〜17:00）にお問い合わせください。"),
])
def test_the_estimate_reads_the_latest_imported_delivery(tmp_path, month, nights, overdue, advice):
    db = _import_with_delivery(tmp_path, month)
    with Records(db, tmp_path / "audit.sqlite", today=lambda: date(2026, 12, 27)) as records:
        [(clinic, _score)] = [found for found in records.find_institutions(
            Asker.county_staff("13001"), "神田ひだまり在宅クリニック") if found[0].name == "神田ひだまり在宅クリニック"]
    assert (clinic.window.earliest_night, clinic.window.latest_night) == nights
    assert clinic.overdue is overdue
    assert institution_next(clinic, BusinessHours().contact()).endswith(advice)
