"""A fictional but realistic records database, for demos, tests and benchmarks.

Names, kana and addresses come from Faker's ja_JP locale (widened with more
surnames and given names, since Faker's 50 × 51 combinations would give every
name dozens of namesakes); numbers follow the formats in docs/records.md; dates run
up to November 2026. The same seed always produces the same database. The `meta`
table says デモデータ（架空）, so every screen can say so too.

A few well-known records (WELL_KNOWN_* below, listed in docs/records.md) are always
present, whatever the size and seed, so tests and demo scripts can rely on them.
"""
from __future__ import annotations

import bisect
import itertools
import os
import random
import sqlite3
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from faker import Faker
from faker.providers.person.ja_JP import Provider as PersonProvider

from storage.sqlite import connect, transaction

from . import names
from .associations import PREFECTURES, county_associations
from .errors import DatabaseExists
from .schema import DEMO_KEY, DEMO_LABEL, connect_writer, get_meta, set_meta
from .import_applications import STEPS as APPLICATION_STEPS, ApplicationRow, write_applications
from .import_institutions import InstitutionRow, write_institutions
from .import_reports import STEPS as REPORT_STEPS, ReportRow, write_reports
from .importer import gc_paused
from .member_csv import MemberRow
from .steps import steps_from_events
from .sync import write_members
from .vocab import PUBLICATIONS

DEFAULT_SEED = 15  # MAMIS LETTER No. 15
AS_OF = date(2026, 11, 30)  # no generated date is later than this

# ------------------------------------------------------------------ name material

# More surnames with readings than Faker's 50 (the most common ones), so that a
# national-scale demo has the variety a fuzzy search must cope with, including
# old character forms (髙橋, 齋藤, 濱田) that people type in the common form.
_MORE_SURNAMES = """
阿部 アベ,池田 イケダ,橋本 ハシモト,山下 ヤマシタ,石川 イシカワ,中島 ナカジマ,藤田 フジタ,後藤 ゴトウ,
小川 オガワ,岡田 オカダ,村上 ムラカミ,長谷川 ハセガワ,近藤 コンドウ,石井 イシイ,斎藤 サイトウ,
坂本 サカモト,遠藤 エンドウ,藤井 フジイ,青木 アオキ,福田 フクダ,三浦 ミウラ,西村 ニシムラ,
藤原 フジワラ,太田 オオタ,松田 マツダ,原田 ハラダ,岡本 オカモト,中野 ナカノ,中川 ナカガワ,小野 オノ,
田村 タムラ,竹内 タケウチ,金子 カネコ,和田 ワダ,中山 ナカヤマ,石田 イシダ,上田 ウエダ,森田 モリタ,
小島 コジマ,柴田 シバタ,原 ハラ,宮崎 ミヤザキ,酒井 サカイ,工藤 クドウ,横山 ヨコヤマ,宮本 ミヤモト,
内田 ウチダ,高木 タカギ,安藤 アンドウ,島田 シマダ,谷口 タニグチ,大野 オオノ,丸山 マルヤマ,今井 イマイ,
高田 タカダ,藤本 フジモト,武田 タケダ,村田 ムラタ,上野 ウエノ,杉山 スギヤマ,増田 マスダ,小山 コヤマ,
大塚 オオツカ,平野 ヒラノ,菅原 スガワラ,久保 クボ,松井 マツイ,千葉 チバ,岩崎 イワサキ,桜井 サクライ,
木下 キノシタ,野口 ノグチ,松尾 マツオ,菊地 キクチ,野村 ノムラ,新井 アライ,渡部 ワタナベ,佐野 サノ,
大西 オオニシ,杉本 スギモト,浅野 アサノ,市川 イチカワ,北村 キタムラ,河野 コウノ,服部 ハットリ,
荒木 アラキ,小田 オダ,中西 ナカニシ,平田 ヒラタ,東 ヒガシ,永井 ナガイ,土屋 ツチヤ,星野 ホシノ,堀 ホリ,
安田 ヤスダ,大久保 オオクボ,川口 カワグチ,渡邉 ワタナベ,髙橋 タカハシ,山崎 ヤマザキ,齋藤 サイトウ,
吉川 ヨシカワ,飯田 イイダ,西田 ニシダ,関 セキ,内藤 ナイトウ,松下 マツシタ,菅野 カンノ,早川 ハヤカワ,
片山 カタヤマ,岩田 イワタ,吉村 ヨシムラ,本田 ホンダ,秋山 アキヤマ,水野 ミズノ,辻 ツジ,大橋 オオハシ,
小松 コマツ,堀内 ホリウチ,根本 ネモト,宮田 ミヤタ,森本 モリモト,西川 ニシカワ,松岡 マツオカ,
桑原 クワバラ,黒田 クロダ,尾崎 オザキ,望月 モチヅキ,川上 カワカミ,田口 タグチ,永田 ナガタ,矢野 ヤノ,
廣瀬 ヒロセ,広瀬 ヒロセ,栗原 クリハラ,松村 マツムラ,高野 タカノ,大島 オオシマ,野田 ノダ,荒井 アライ,
樋口 ヒグチ,小池 コイケ,関口 セキグチ,熊谷 クマガイ,福島 フクシマ,須藤 スドウ,岩本 イワモト,
吉岡 ヨシオカ,川村 カワムラ,浜田 ハマダ,濱田 ハマダ,秋元 アキモト,島崎 シマザキ,宇野 ウノ,
二宮 ニノミヤ,嶋田 シマダ,五十嵐 イガラシ,長尾 ナガオ,津田 ツダ,奥村 オクムラ,平井 ヒライ,
古川 フルカワ,河合 カワイ,榎本 エノモト,大石 オオイシ,澤田 サワダ,沢田 サワダ,篠原 シノハラ,
西山 ニシヤマ,白石 シライシ,富田 トミタ,冨田 トミタ,岡崎 オカザキ,北川 キタガワ,横田 ヨコタ,
宮下 ミヤシタ,八木 ヤギ,土井 ドイ,小西 コニシ,南 ミナミ,瀬戸 セト,比嘉 ヒガ,金城 キンジョウ,
大城 オオシロ,宮城 ミヤギ,新垣 アラカキ,長田 ナガタ,宮川 ミヤガワ,大谷 オオタニ,坂口 サカグチ,
新田 ニッタ,植田 ウエダ,柳田 ヤナギダ,細川 ホソカワ,松浦 マツウラ,菊池 キクチ,高山 タカヤマ
"""
_MORE_MALE = """
大輔 ダイスケ,健太 ケンタ,翔太 ショウタ,拓也 タクヤ,誠 マコト,浩 ヒロシ,茂 シゲル,隆 タカシ,
健一 ケンイチ,和也 カズヤ,達也 タツヤ,哲也 テツヤ,秀樹 ヒデキ,剛 ツヨシ,亮 リョウ,大樹 ダイキ,
悠斗 ユウト,陽介 ヨウスケ,慎一 シンイチ,正人 マサト,信之 ノブユキ,智也 トモヤ,康弘 ヤスヒロ,
俊介 シュンスケ,雄一 ユウイチ,一郎 イチロウ,太郎 タロウ,次郎 ジロウ,健二 ケンジ,光男 ミツオ,勝 マサル,
聡 サトシ,淳 ジュン,徹 トオル,純一 ジュンイチ,祐介 ユウスケ,圭介 ケイスケ,航 ワタル,蓮 レン,悠真 ユウマ,
湊 ミナト,拓海 タクミ,翼 ツバサ,健 ケン,正樹 マサキ,信一 シンイチ,浩二 コウジ,幸一 コウイチ,
賢治 ケンジ,孝 タカシ,敏夫 トシオ,義明 ヨシアキ,克也 カツヤ,昌弘 マサヒロ,直人 ナオト,裕太 ユウタ
"""
_MORE_FEMALE = """
花子 ハナコ,美咲 ミサキ,恵子 ケイコ,裕子 ユウコ,由美 ユミ,真由美 マユミ,智子 トモコ,京子 キョウコ,
幸子 サチコ,久美子 クミコ,直美 ナオミ,麻衣 マイ,愛 アイ,彩 アヤ,優子 ユウコ,千尋 チヒロ,沙織 サオリ,
理恵 リエ,美穂 ミホ,恵美 エミ,奈々 ナナ,結衣 ユイ,葵 アオイ,陽菜 ヒナ,美紀 ミキ,典子 ノリコ,洋子 ヨウコ,
明子 アキコ,加奈子 カナコ,香 カオリ,瞳 ヒトミ,舞 マイ,綾香 アヤカ,里美 サトミ,雅子 マサコ,純子 ジュンコ,
由紀 ユキ,亜希子 アキコ,絵美 エミ,さくら サクラ,みどり ミドリ,真理子 マリコ,静香 シズカ,朋美 トモミ,紀子 ノリコ
"""


def _pairs(text: str) -> list[tuple[str, str]]:
    return [tuple(item.split()) for item in text.replace("\n", "").split(",") if item.strip()]


def _name_material() -> tuple[list[tuple[str, str]], list[float], list[tuple[str, str]], list[tuple[str, str]]]:
    """Surnames (with weights: Faker's common ones first), male and female given names."""
    faker_surnames = [(k, r) for k, r, _romaji in PersonProvider.last_name_pairs]
    seen = {k for k, _ in faker_surnames}
    extra = [p for p in _pairs(_MORE_SURNAMES) if p[0] not in seen]
    surnames = faker_surnames + extra
    weights = [3.0] * len(faker_surnames) + [1.0] * len(extra)
    male = [(k, r) for k, r, _ in PersonProvider.first_name_male_pairs]
    female = [(k, r) for k, r, _ in PersonProvider.first_name_female_pairs]
    male += [p for p in _pairs(_MORE_MALE) if p[0] not in {k for k, _ in male}]
    female += [p for p in _pairs(_MORE_FEMALE) if p[0] not in {k for k, _ in female}]
    return surnames, weights, male, female


_STEMS = [("さくら", "サクラ"), ("ひまわり", "ヒマワリ"), ("青葉", "アオバ"), ("みどり", "ミドリ"),
          ("あおぞら", "アオゾラ"), ("つばさ", "ツバサ"), ("若葉", "ワカバ"), ("ほほえみ", "ホホエミ"),
          ("すずらん", "スズラン"), ("かえで", "カエデ"), ("ひかり", "ヒカリ"), ("駅前", "エキマエ"),
          ("中央", "チュウオウ"), ("けやき", "ケヤキ"), ("たんぽぽ", "タンポポ"), ("こすもす", "コスモス"),
          ("はなみずき", "ハナミズキ"), ("あさひ", "アサヒ"), ("やまびこ", "ヤマビコ"), ("みなと", "ミナト")]
_DEPTS = [("内科", "ナイカ"), ("整形外科", "セイケイゲカ"), ("皮膚科", "ヒフカ"), ("眼科", "ガンカ"),
          ("耳鼻咽喉科", "ジビインコウカ"), ("小児科", "ショウニカ"), ("", ""), ("こども", "コドモ"),
          ("在宅", "ザイタク"), ("メンタル", "メンタル"), ("胃腸科", "イチョウカ"), ("循環器内科", "ジュンカンキナイカ"),
          ("レディース", "レディース"), ("消化器内科", "ショウカキナイカ")]

_APPLICATION_RETURNS = [
    "勤務先医療機関の記載に誤りがあります。",
    "入会年月日が未記入です。",
    "会費区分の選択に誤りがあります。",
    "医籍登録番号の確認が必要です。",
    "添付書類（医師免許証の写し）が不鮮明です。",
]
_TRANSFER_RETURNS = [
    "異動元の郡市区等医師会での手続きが完了していません。",
    "異動年月日が未記入です。",
    "新しい勤務先の医療機関名に誤りがあります。",
]
_REPORT_RETURNS = [
    "報告項目（時間外の診療体制）の記載漏れがあります。",
    "連携先医療機関の名称が未記入です。",
    "在宅医療の実施状況の数値に誤りがあります。",
    "1号機能の「具体的な機能」の選択漏れがあります。",
]

# ------------------------------------------------------------------ well-known records

WELL_KNOWN_INSTITUTIONS = {
    # key: (code serial, county, name, kana, source, status, filed_on, registered_on)
    "yamada_clinic": ("0001", "13001", "千代田やまだ内科クリニック", "チヨダヤマダナイカクリニック",
                      "vendor", "in_master", None, "2019-06-16"),
    "sakura_derm": ("0002", "13002", "日本橋さくら皮膚科クリニック", "ニホンバシサクラヒフカクリニック",
                    "vendor", "in_master", None, "2021-09-12"),
    "hidamari_home": (None, "13001", "神田ひだまり在宅クリニック", "カンダヒダマリザイタククリニック",
                      "manual", "waiting_bureau", "2026-10-05", None),
    "marunouchi_moved": (None, "13001", "丸の内メディカルクリニック", "マルノウチメディカルクリニック",
                         "manual", "unmatched", "2026-03-10", None),
    "umeda_eye": ("0003", "27001", "梅田たかはし眼科", "ウメダタカハシガンカ",
                  "vendor", "in_master", None, "2015-02-08"),
}
# member number: (name, kana, county, status, workplace key, joined_on, withdrawn_on, delivery)
_S, _N = 1, 0
WELL_KNOWN_MEMBERS = {
    "1300001": ("山田　太郎", "ヤマダ　タロウ", "13001", "active", "yamada_clinic", "2010-04-01", None,
                ((_S, "workplace"), (_S, "home"), (_N, None))),
    "1300002": ("佐藤　花子", "サトウ　ハナコ", "13001", "pending", "hidamari_home", None, None,
                ((None, None),) * 3),
    "1300003": ("鈴木　一郎", "スズキ　イチロウ", "13002", "active", "sakura_derm", "2003-10-01", None,
                ((_S, "workplace"), (_S, "workplace"), (_S, "workplace"))),
    "1300004": ("髙橋　美咲", "タカハシ　ミサキ", "13001", "active", "sakura_derm", "2018-04-01", None,
                ((_S, "home"), (_S, "other"), (_N, None))),
    "2700001": ("田中　健一", "タナカ　ケンイチ", "27001", "active", "umeda_eye", "1998-05-01", None,
                ((_S, "home"), (_S, "home"), (_S, "home"))),
    "0100001": ("渡辺　直樹", "ワタナベ　ナオキ", "01001", "withdrawn", None, "1985-04-01", "2025-03-31",
                ((_N, None), (_N, None), (_N, None))),
    # Moved 13001 → 13002 (completed), now moving 13002 → 27001 (returned): each application is
    # shown only to whom it concerns, so 千代田区 sees the first transfer and never the second.
    "1300005": ("小林　誠", "コバヤシ　マコト", "13002", "active", None, "2012-04-01", None,
                ((_S, "home"), (_S, "home"), (_N, None))),
}
# application number: (member, kind, county, from county, submitted_on, stage, state, events)
WELL_KNOWN_APPLICATIONS = {
    "A2026-000001": ("1300002", "admission", "13001", None, "2026-10-20", "prefecture", "returned", (
        ("2026-10-20", "applicant", "submitted", None),
        ("2026-10-28", "county", "approved", None),
        ("2026-11-10", "prefecture", "returned",
         "勤務先医療機関が厚生局の登録待ちのため、医療機関名の確認が必要です。"),
    )),
    "A2026-000002": ("1300003", "transfer", "13002", "13001", "2026-11-02", "prefecture", "in_review", (
        ("2026-11-02", "applicant", "submitted", None),
        ("2026-11-12", "county", "approved", None),
    )),
    "A2025-000001": ("1300005", "transfer", "13002", "13001", "2025-06-02", "done", "completed", (
        ("2025-06-02", "applicant", "submitted", None),
        ("2025-06-10", "county", "approved", None),
        ("2025-06-19", "prefecture", "approved", None),
        ("2025-07-01", "jma", "completed", None),
    )),
    "A2026-000003": ("1300005", "transfer", "27001", "13002", "2026-11-04", "county", "returned", (
        ("2026-11-04", "applicant", "submitted", None),
        ("2026-11-16", "county", "returned", "異動年月日が未記入です。"),
    )),
    "A2010-000001": ("1300001", "admission", "13001", None, "2010-03-01", "done", "completed", (
        ("2010-03-01", "applicant", "submitted", None),
        ("2010-03-09", "county", "approved", None),
        ("2010-03-18", "prefecture", "approved", None),
        ("2010-04-01", "jma", "completed", None),
    )),
}
# institution key: (fiscal year, submitted_on, stage, state, events)
WELL_KNOWN_REPORTS = {
    "yamada_clinic": (2025, "2026-01-15", "done", "approved", (
        ("2026-01-15", "institution", "submitted", None),
        ("2026-01-30", "county", "approved", None),
        ("2026-02-16", "prefecture", "approved", None),
    )),
    "sakura_derm": (2025, "2026-02-02", "county", "returned", (
        ("2026-02-02", "institution", "submitted", None),
        ("2026-02-20", "county", "returned", "報告項目（時間外の診療体制）の記載漏れがあります。"),
    )),
    "umeda_eye": (2025, "2026-03-05", "prefecture", "in_review", (
        ("2026-03-05", "institution", "submitted", None),
        ("2026-03-19", "county", "approved", None),
    )),
}


def institution_check_digit(six_digits: str) -> str:
    """Check digit of the 7-digit part of a 医療機関コード (modulus 10, weights 2·1).

    The real 検証番号 uses the same kind of modulus-10 scheme; with it the demo's
    codes look right and a typo in one digit is caught.
    """
    total = 0
    for i, ch in enumerate(reversed(six_digits)):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n // 10 + n % 10
    return str((10 - total % 10) % 10)


def institution_code(prefecture: str, area: int, serial: str) -> str:
    """10-digit 医療機関コード: prefecture(2) + 1 (医科) + area(2) + serial(4) + check digit."""
    six = f"{area:02d}{serial}"
    return f"{prefecture}1{six}{institution_check_digit(six)}"


@dataclass(frozen=True)
class DemoSummary:
    path: Path
    members: int
    institutions: int
    applications: int
    reports: int
    counties: int
    seconds: float


# ------------------------------------------------------------------ the generator

class _Builder:
    """Holds the random sources and lookup tables of one generation run."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.fake = Faker("ja_JP")
        self.fake.seed_instance(seed)
        self.surnames, surname_weights, self.male, self.female = _name_material()
        self.surname_cum = list(itertools.accumulate(surname_weights))
        self.counties = county_associations()
        self.pref_names = {code: name for code, name, _p, _c in PREFECTURES}
        pops = {code: pop for code, _n, pop, _c in PREFECTURES}
        weights = []
        for i, (code, _name, pref) in enumerate(self.counties):
            first = code.endswith("001")
            weights.append(pops[pref] * (3.0 if first else 1.0))
        self.county_cum = list(itertools.accumulate(weights))
        self.county_index = {code: i for i, (code, _n, _p) in enumerate(self.counties)}

    def county(self) -> tuple[str, str, str]:
        r = self.rng.random() * self.county_cum[-1]
        return self.counties[bisect.bisect_right(self.county_cum, r)]

    def surname(self) -> tuple[str, str]:
        r = self.rng.random() * self.surname_cum[-1]
        return self.surnames[bisect.bisect_right(self.surname_cum, r)]

    def day(self, start: date, end: date) -> date:
        return start + timedelta(days=self.rng.randrange((end - start).days + 1))

    def address(self, county_name: str, pref: str) -> str:
        city = county_name.removesuffix("医師会")
        f = self.fake
        return f"{self.pref_names[pref]}{city}{f.town()}{f.chome()}{f.ban()}{f.gou()}"

    def institution_name(self, hospital: bool) -> tuple[str, str]:
        rng = self.rng
        if hospital:
            if rng.random() < 0.5:
                s, k = self.surname()
                return f"{s}記念病院", f"{k}キネンビョウイン"
            s, k = rng.choice(_STEMS)
            return f"{s}総合病院", f"{k}ソウゴウビョウイン"
        pattern = rng.random()
        dept, dept_kana = rng.choice(_DEPTS)
        if pattern < 0.45:
            s, k = self.surname()
            return f"{s}{dept}クリニック", f"{k}{dept_kana}クリニック"
        if pattern < 0.8:
            s, k = rng.choice(_STEMS)
            return f"{s}{dept}クリニック", f"{k}{dept_kana}クリニック"
        s, k = self.surname()
        dept, dept_kana = (dept, dept_kana) if dept else ("内科", "ナイカ")
        return f"{s}{dept}医院", f"{k}{dept_kana}イイン"


_INSERT_COUNTY = """
INSERT INTO associations (code, level, name, prefecture_code) VALUES (:code, 'county', :name, :prefecture_code)
"""
def _institutions(b: _Builder, count: int) -> tuple[list[dict], dict[str, dict]]:
    """Vendor-delivered institutions plus a few typed in by hand; returns rows and well-known ones."""
    rows, known = [], {}
    used_codes = set()
    county_names = {code: name for code, name, _p in b.counties}
    for key, (serial, county, name, kana, source, status, filed, registered) in WELL_KNOWN_INSTITUTIONS.items():
        pref = county[:2]
        code = institution_code(pref, int(county[2:]) % 100, serial) if serial else None
        used_codes.add(code)
        row = {"id": len(rows) + 1, "institution_code": code, "name": name, "kana": kana,
               "postal_code": b.fake.zipcode(), "address": b.address(county_names[county], pref),
               "prefecture_code": pref, "county_code": county, "source": source,
               "master_status": status, "filed_on": filed, "registered_on": registered, "kind": "clinic"}
        rows.append(row)
        known[key] = row
    manual_share = 0.015
    for _ in range(count):
        code_c, county_name, pref = b.county()
        manual = b.rng.random() < manual_share
        hospital = b.rng.random() < 0.08
        name, kana = b.institution_name(hospital=hospital)
        row = {"id": len(rows) + 1, "name": name, "kana": kana, "postal_code": b.fake.zipcode(),
               "kind": "hospital" if hospital else "clinic",
               "address": b.address(county_name, pref), "prefecture_code": pref,
               "county_code": code_c, "filed_on": None, "registered_on": None}
        status = "in_master"
        if manual:
            r = b.rng.random()
            status = "waiting_bureau" if r < 0.6 else ("in_master" if r < 0.9 else "unmatched")
            row["filed_on"] = (b.day(date(2026, 8, 1), date(2026, 11, 20)) if status == "waiting_bureau"
                               else b.day(date(2025, 4, 1), date(2026, 7, 31))).isoformat()
        code = None
        if status == "in_master":
            while code is None or code in used_codes:
                code = institution_code(pref, int(code_c[2:]) % 100, f"{b.rng.randrange(1000, 10000)}")
            used_codes.add(code)
            start = date.fromisoformat(row["filed_on"]) + timedelta(days=60) if manual else date(2000, 1, 1)
            row["registered_on"] = b.day(start, date(2026, 10, 31)).isoformat()
        row.update(institution_code=code, source="manual" if manual else "vendor", master_status=status)
        rows.append(row)
    for row in rows:
        row["name_key"] = names.fold(row["name"])
        row["kana_key"] = names.fold(row["kana"])
    return rows, known


def _members(b: _Builder, count: int, institutions: list[dict], known_inst: dict[str, dict]) -> list[MemberRow]:
    by_county: dict[str, list[dict]] = {}
    for inst in institutions:
        by_county.setdefault(inst["county_code"], []).append(inst)
    county_names = {code: name for code, name, _p in b.counties}
    rows = []
    for number, (name, kana, county, status, work, joined, withdrawn, delivery) in WELL_KNOWN_MEMBERS.items():
        inst = known_inst.get(work) if work else None
        rows.append(MemberRow(number, name, kana, county[:2], county, county_names[county], status,
                              inst["institution_code"] if inst else None, inst["name"] if inst else None,
                              joined, withdrawn, "2026-11-15", delivery))
    # Random members never share a well-known name (even in another character form),
    # so a search for 山田太郎 or 高橋美咲 has one right answer in every demo.
    reserved = {names.fold(v[0]) for v in WELL_KNOWN_MEMBERS.values()}
    used = set(WELL_KNOWN_MEMBERS)
    rng = b.rng
    for _ in range(max(0, count - len(rows))):
        county, county_name, pref = b.county()
        number = f"{pref}{rng.randrange(10000, 100000)}"
        while number in used:
            number = f"{pref}{rng.randrange(10000, 100000)}"
        used.add(number)
        while True:
            (fam, fam_k) = b.surname()
            given, given_k = rng.choice(b.male if rng.random() < 0.75 else b.female)
            name = f"{fam}　{given}"
            if names.fold(name) not in reserved:
                break
        r = rng.random()
        status = "active" if r < 0.935 else ("pending" if r < 0.955 else "withdrawn")
        work = None
        local = by_county.get(county)
        if local and rng.random() < 0.85:
            work = rng.choice(local)
        joined = withdrawn = None
        if status != "pending":
            joined = b.day(date(1975, 4, 1), date(2026, 11, 1)).replace(day=1).isoformat()
        if status == "withdrawn":
            withdrawn = b.day(max(date.fromisoformat(joined), date(2015, 1, 1)), AS_OF).isoformat()
        delivery = []
        for pub, p_send in zip(PUBLICATIONS, (0.95, 0.9, 0.65)):
            if status == "withdrawn":
                delivery.append((0, None))
            elif rng.random() < 0.08:
                delivery.append((None, None))
            elif rng.random() < p_send:
                d = rng.random()
                dest = "workplace" if (d < 0.55 and work) else ("home" if d < 0.95 else "other")
                delivery.append((1, dest))
            else:
                delivery.append((0, None))
        rows.append(MemberRow(
            number, name, f"{fam_k}　{given_k}", pref, county, county_name, status,
            work["institution_code"] if work else None, work["name"] if work else None,
            joined, withdrawn, b.day(date(2024, 4, 1), AS_OF).isoformat(), tuple(delivery)))
    return rows


def _stage_events(b: _Builder, start: date, levels: list[str], finish: str, returns: list[str],
                  outcome: str) -> tuple[list[tuple], str, str, date]:
    """Walk a procedure through its approval levels and stop at the wanted outcome.

    outcome: "completed" (every level approves), "in_review:<level>" (waiting at a
    level) or "returned:<level>" (that level sent it back with a reason).
    """
    events = [(start.isoformat(), levels[0], "submitted", None)]
    day = start
    kind, _, stop_at = outcome.partition(":")
    for level in levels[1:]:
        day = min(day + timedelta(days=b.rng.randint(3, 15)), AS_OF)
        if kind != "completed" and level == stop_at:
            if kind == "returned":
                events.append((day.isoformat(), level, "returned", b.rng.choice(returns)))
            return events, level, kind, day
        action = finish if level == levels[-1] else "approved"
        events.append((day.isoformat(), level, action, None))
    return events, "done", "completed" if finish == "completed" else "approved", day


def _application(b: _Builder, serial, member_number: str, kind: str, county: str, from_county: str | None,
                 start: date, levels: list[str], returns: list[str], outcome: str) -> tuple[dict, list[tuple]]:
    events, stage, state, _ = _stage_events(b, start, levels, "completed", returns, outcome)
    return ({"application_number": f"A{start.year}-{next(serial):06d}", "member_number": member_number,
             "kind": kind, "county_code": county, "from_county_code": from_county,
             "submitted_on": start.isoformat(), "stage": stage, "state": state}, events)


def _applications(b: _Builder, members: list[MemberRow]) -> list[tuple[dict, list[tuple]]]:
    out = []
    county_codes = [c for c, _n, _p in b.counties]
    levels = ["applicant", "county", "prefecture", "jma"]
    serial = itertools.count(100)
    for m in members:
        if m.member_number in WELL_KNOWN_MEMBERS:
            continue
        r = b.rng.random()
        if m.status == "pending":
            start = b.day(date(2026, 6, 1), date(2026, 11, 25))
            outcome = b.rng.choice(["in_review:county", "in_review:county", "in_review:prefecture",
                                    "in_review:jma", "returned:county", "returned:prefecture"])
            kind, from_county, county, returns = "admission", None, m.county_code, _APPLICATION_RETURNS
        elif m.status == "active" and m.joined_on and m.joined_on >= "2025-04-01":
            start = date.fromisoformat(m.joined_on) - timedelta(days=b.rng.randint(30, 50))
            outcome, kind, from_county, county, returns = ("completed", "admission", None, m.county_code,
                                                           _APPLICATION_RETURNS)
        elif m.status == "active" and r < 0.01:
            start = b.day(date(2025, 10, 1), date(2026, 11, 20))
            same_pref = [c for c in county_codes if c[:2] == m.county_code[:2] and c != m.county_code]
            pool = same_pref if (same_pref and b.rng.random() < 0.8) else county_codes
            from_county = b.rng.choice([c for c in pool if c != m.county_code])
            outcome = b.rng.choice(["completed", "completed", "in_review:county",
                                    "in_review:prefecture", "returned:county"])
            kind, county, returns = "transfer", m.county_code, _TRANSFER_RETURNS
            joined = max(date(2015, 4, 1), date.fromisoformat(m.joined_on or "2015-04-01"))
            if b.rng.random() < 0.5 and joined < start - timedelta(days=60):
                # moved before as well: several applications, each concerning other counties
                earlier = b.day(joined, start - timedelta(days=60))
                before = b.rng.choice([c for c in county_codes if c not in (from_county, m.county_code)])
                out.append(_application(b, serial, m.member_number, "transfer", from_county, before, earlier,
                                        levels, _TRANSFER_RETURNS, "completed"))
        else:
            continue
        out.append(_application(b, serial, m.member_number, kind, county, from_county, start, levels, returns,
                                outcome))
    for number, (member, kind, county, from_county, submitted, stage, state, events) in WELL_KNOWN_APPLICATIONS.items():
        out.append(({"application_number": number, "member_number": member, "kind": kind,
                     "county_code": county, "from_county_code": from_county, "submitted_on": submitted,
                     "stage": stage, "state": state}, list(events)))
    return out


def _reports(b: _Builder, institutions: list[dict], known_inst: dict[str, dict]) -> list[tuple[dict, list[tuple]]]:
    out = []
    levels = ["institution", "county", "prefecture"]
    known_ids = {row["id"] for row in known_inst.values()}
    for inst in institutions:
        if inst["id"] in known_ids or inst["master_status"] != "in_master" or b.rng.random() > 0.45:
            continue
        start = b.day(date(2026, 1, 5), date(2026, 3, 31))
        outcome = b.rng.choices(["completed", "in_review:county", "in_review:prefecture",
                                 "returned:county", "returned:prefecture"], [70, 10, 8, 7, 5])[0]
        events, stage, state, day = _stage_events(b, start, levels, "approved", _REPORT_RETURNS, outcome)
        if state == "returned" and b.rng.random() < 0.4:  # sent back, corrected, now in review again
            day = min(day + timedelta(days=b.rng.randint(5, 30)), AS_OF)
            events.append((day.isoformat(), "institution", "resubmitted", None))
            stage, state = "county", "in_review"
        out.append(({"institution_id": inst["id"], "fiscal_year": 2025, "submitted_on": start.isoformat(),
                     "stage": stage, "state": state}, events))
    for key, (year, submitted, stage, state, events) in WELL_KNOWN_REPORTS.items():
        out.append(({"institution_id": known_inst[key]["id"], "fiscal_year": year, "submitted_on": submitted,
                     "stage": stage, "state": state}, list(events)))
    return out


def _is_demo(path: Path) -> bool:
    try:
        conn = connect(path, readonly=True)
        try:
            return get_meta(conn, DEMO_KEY) is not None
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def _remove_db_files(path: Path) -> None:
    for suffix in ("-wal", "-shm", "-journal", ""):
        Path(str(path) + suffix).unlink(missing_ok=True)


def generate_demo(db_path: Path | str, members: int = 20_000, seed: int = DEFAULT_SEED, *,
                  force: bool = False) -> DemoSummary:
    """Build a demo records database with `members` members at `db_path`.

    The database is built in a temporary file next to the target and moved into
    place at the end, so an interrupted run never leaves a half-built database
    where the help desk reads. An existing database is only replaced with `force`.
    """
    with gc_paused():
        return _generate(Path(db_path), members, seed, force)


def _as_rows(institutions: list[dict], applications, reports) -> tuple[list, list, list]:
    """The generated records as the rows their files carry, so the demo is written by the importers'
    own writers (and exports to files that import back to the same database)."""
    inst = [InstitutionRow(r["institution_code"], r["name"], r["kana"], r["postal_code"], r["address"],
                           r["prefecture_code"], r["county_code"], None, r.get("kind"), None, None,
                           None, r["registered_on"], r["source"], r["master_status"], r["filed_on"])
            for r in institutions]
    apps = []
    for row, events in applications:
        dates, returned_by, reason = steps_from_events(APPLICATION_STEPS, events)
        apps.append(ApplicationRow(row["application_number"], row["member_number"], row["kind"], row["county_code"],
                                   row["from_county_code"], row["stage"], row["state"], dates, returned_by, reason))
    code_of = {r["id"]: r["institution_code"] for r in institutions}
    reps = []
    for row, events in reports:
        dates, returned_by, reason = steps_from_events(REPORT_STEPS, events)
        reps.append(ReportRow(code_of[row["institution_id"]], row["fiscal_year"], row["stage"], row["state"], dates,
                              returned_by, reason))
    return inst, apps, reps


def _generate(path: Path, members: int, seed: int, force: bool) -> DemoSummary:
    started = time.perf_counter()
    if path.exists() and not force:
        raise DatabaseExists(path, _is_demo(path))
    if members < len(WELL_KNOWN_MEMBERS):
        raise ValueError(f"members must be at least {len(WELL_KNOWN_MEMBERS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.building-{os.getpid()}")
    _remove_db_files(tmp)

    b = _Builder(seed)
    institutions, known_inst = _institutions(b, max(60, members // 4))
    member_rows = _members(b, members, institutions, known_inst)
    applications = _applications(b, member_rows)
    reports = _reports(b, institutions, known_inst)

    conn = connect_writer(tmp)
    try:
        conn.execute("PRAGMA synchronous = OFF")  # a crash discards the temporary file anyway
        conn.execute("PRAGMA cache_size = -65536")
        with transaction(conn):
            conn.executemany(_INSERT_COUNTY, [{"code": c, "name": n, "prefecture_code": p}
                                              for c, n, p in b.counties])
            institution_rows, application_rows, report_rows = _as_rows(institutions, applications, reports)
            write_institutions(conn, institution_rows, [], {})
            write_members(conn, member_rows, [], {})
            write_applications(conn, application_rows, [], {})
            write_reports(conn, report_rows, [], {})
            set_meta(conn, DEMO_KEY, DEMO_LABEL)
            set_meta(conn, "demo_seed", str(seed))
            set_meta(conn, "demo_members", str(members))
            set_meta(conn, "demo_as_of", AS_OF.isoformat())
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except BaseException:
        conn.close()
        _remove_db_files(tmp)
        raise
    conn.close()
    for suffix in ("-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    os.replace(tmp, path)
    return DemoSummary(path=path, members=len(member_rows), institutions=len(institutions),
                       applications=len(applications), reports=len(reports),
                       counties=len(b.counties), seconds=time.perf_counter() - started)
