"""What the demo is made of: name material, the well-known records, and the random sources.

The demo generator (records/demo.py) assembles a database from these; the import benchmark
(bench/import_bench.py) draws national-scale files from the same `Builder`. Names, kana and
addresses come from Faker's ja_JP locale, widened with more surnames and given names (Faker's 50 × 51
combinations would give every name dozens of namesakes). The well-known records (WELL_KNOWN_*, listed
in docs/records.md) are in every demo, whatever the size and seed, so tests and demo scripts can rely
on them.
"""
from __future__ import annotations

import bisect
import itertools
import random
from datetime import date, timedelta

from faker import Faker
from faker.providers.person.ja_JP import Provider as PersonProvider

from .associations import PREFECTURES, county_associations

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

APPLICATION_RETURNS = [
    "勤務先医療機関の記載に誤りがあります。",
    "入会年月日が未記入です。",
    "会費区分の選択に誤りがあります。",
    "医籍登録番号の確認が必要です。",
    "添付書類（医師免許証の写し）が不鮮明です。",
]
TRANSFER_RETURNS = [
    "異動元の郡市区等医師会での手続きが完了していません。",
    "異動年月日が未記入です。",
    "新しい勤務先の医療機関名に誤りがあります。",
]
REPORT_RETURNS = [
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


# ------------------------------------------------------------------ the random sources

class Builder:
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
