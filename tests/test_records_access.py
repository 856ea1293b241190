"""The access rules, the Asker value and the masking helpers, on their own."""
import pytest

from records.access import (Asker, Scope, mask_identifier, mask_identifiers_in_text,
                            mask_member_number, mask_name, may_look_up, may_see, search_area)
from records.errors import (UNAVAILABLE_JA, AccessDenied, ApplicationNotFound, InstitutionNotFound,
                            InvalidQuery, MemberNotFound, ReportNotFound, message_ja)

TOKYO_CHIYODA = Scope(areas=frozenset({("13001", "13")}), people=frozenset({"1300001"}))
TRANSFER = Scope(areas=frozenset({("13002", "13"), ("27001", "27")}), people=frozenset({"1300003"}))
MASTER = Scope(areas=frozenset({("13001", "13")}), people=frozenset({"1300001"}), staff_wide=True)


@pytest.mark.parametrize("asker, chiyoda, transfer, master", [
    (Asker.anonymous(), False, False, False),
    (Asker.county_staff("13001"), True, False, True),
    (Asker.county_staff("13002"), False, True, True),
    (Asker.county_staff("27001"), False, True, True),
    (Asker.prefecture_staff("13"), True, True, True),
    (Asker.prefecture_staff("27"), False, True, True),
    (Asker.prefecture_staff("01"), False, False, True),
    (Asker.member("1300001"), True, False, True),
    (Asker.member("1300003"), False, True, False),
    (Asker.desk(), False, False, False),
    (Asker.desk(on_behalf_of=Asker.county_staff("13001")), True, False, True),
    (Asker.desk(on_behalf_of=Asker.member("1300003")), False, True, False),
    (Asker.desk(on_behalf_of=Asker.anonymous()), False, False, False),
])
def test_may_see(asker, chiyoda, transfer, master):
    assert (may_see(asker, TOKYO_CHIYODA), may_see(asker, TRANSFER), may_see(asker, MASTER)) == (
        chiyoda, transfer, master)
    assert may_see(asker, Scope()) is False  # nothing found: visible to nobody


@pytest.mark.parametrize("kwargs", [
    {"role": "staff"},
    {"role": "staff", "level": "county", "association_code": "13"},
    {"role": "staff", "level": "prefecture", "association_code": "13001"},
    {"role": "member", "member_number": "123456"},
    {"role": "member"},
    {"role": "anonymous", "member_number": "1300001"},
    {"role": "desk", "on_behalf_of": Asker.desk()},
    {"role": "desk", "association_code": "13"},
    {"role": "admin"},
])
def test_invalid_askers_are_refused_at_construction(kwargs):
    with pytest.raises(ValueError):
        Asker(**kwargs)


def test_search_area_follows_the_same_rules():
    assert search_area(Asker.anonymous()).nowhere
    assert search_area(Asker.desk()).nowhere
    assert search_area(Asker.county_staff("13001")).county_code == "13001"
    assert search_area(Asker.prefecture_staff("13")).prefecture_code == "13"
    assert search_area(Asker.member("1300001")).member_number == "1300001"
    assert search_area(Asker.desk(on_behalf_of=Asker.prefecture_staff("27"))).prefecture_code == "27"
    assert [may_look_up(a) for a in (Asker.anonymous(), Asker.desk(), Asker.member("1300001"),
                                     Asker.desk(on_behalf_of=Asker.county_staff("13001")))] == [
        False, False, True, True]


def test_masking_helpers():
    assert mask_member_number("1234567") == "12***67"
    assert mask_identifier("1310100016") == "13******16"
    assert mask_identifier("A2026-000001", 3) == "A20******001"
    assert mask_identifier("12345") == "*****"
    assert mask_name("山田　太郎") == "山＊＊＊＊"
    assert mask_identifiers_in_text("会員番号1300001と１３００００２、医療機関1310100016。電話0120-110-030") == (
        "会員番号13***01と１３***０２、医療機関13******16。電話0120-110-030")


def test_asker_log_reference_masks_member_numbers():
    assert Asker.member("1300001", label="tg:42").log_ref() == "member:13***01(tg:42)"
    assert Asker.county_staff("13001", label="chiyoda-1").log_ref() == "staff:county:13001(chiyoda-1)"
    assert Asker.desk(on_behalf_of=Asker.member("1300001")).log_ref() == "desk"


def test_every_refusal_reads_the_same():
    for exc in (MemberNotFound(), AccessDenied(), ApplicationNotFound(), InstitutionNotFound(), ReportNotFound()):
        assert message_ja(exc) == UNAVAILABLE_JA == "該当する記録が見つからないか、閲覧する権限がありません。"
    assert message_ja(InvalidQuery("member_number", "12")) == "会員番号は7桁の数字で入力してください。"
