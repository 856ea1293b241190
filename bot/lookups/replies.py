"""Record lookups said in the chat: record values (records.values) turned into short replies.

One or two sentences and a small table per record; dates the Japanese way (2026年10月5日) wherever a
person reads them; a status said once. Every reply carries its redacted form (names and identifiers
masked) for the desk and the logs. Nothing here reads the records: bot/lookups/answer.py fetches (and the
records package checks access), this module only words what was found.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from records.values import ACTION_JA, LEVEL_JA, SOURCE_JA
from records.vocab import DESTINATION_JA, PUBLICATION_JA, PUBLICATIONS

from bot.conversation.buttons import CHOICE_BUTTON, Button
from bot.conversation.choices import InstitutionChoice, MemberChoice
from bot.model import Reply, Table
from bot.privacy.redaction import redact
from bot.conversation.text import japanese_date

PROMPTS = {
    "application": "入会届・異動届の状況をお調べします。会員番号（7桁）、申請番号（例：A2026-000001）、"
                   "または先生のお名前を入力してください。",
    "delivery": "送付先（送付区分）をお調べします。会員番号（7桁）または先生のお名前を入力してください。",
    "institution": "医療機関マスタへの掲載状況をお調べします。医療機関コード（10桁）または医療機関名を入力してください。",
    "report": "かかりつけ医機能報告の状況をお調べします。医療機関コード（10桁）または医療機関名を入力してください。",
    "link_code": "会員の先生が Telegram のアカウントを連携するための、1回限りの連携コードを発行します。"
                 "先生の会員番号（7桁）またはお名前を入力してください。",
    "member": "会員番号（7桁）または先生のお名前を入力してください。",
}
PROMPT_NOTE = "（記事を探すときは、そのまま質問を入力してください）"

# Where to sign in and what an administrator runs are the channel's words: a SignInHint or
# RecordsNotLoaded action goes with these texts (handlers/web/api.py adds the web's).
SIGN_IN_TEXT = (
    "会員情報・手続きの状況などの照会には、医師会事務局の職員としてのログインが必要です。"
    "会員の先生方は、医師会事務局が発行する連携コードで Telegram のアカウントを連携すると、"
    "ご自身の情報を確認できます。"
)
NO_DATA_TEXT = "会員データがまだ読み込まれていません。"
STAFF_ONLY_LINK_TEXT = "連携コードは医師会事務局の職員が発行します。ご所属の医師会事務局にご依頼ください。"
WITHDRAWN_LINK_TEXT = "退会した会員には連携コードを発行できません。"
MANY_TEXT = "該当する先生が複数いらっしゃいます。どなたについてお調べしますか。"
NEAR_TEXT = "お名前が完全に一致する先生は見つかりませんでした。もしかして、次の先生ですか。"
MANY_INSTITUTIONS_TEXT = "該当しそうな医療機関が複数あります。どの医療機関についてお調べしますか。"
NEAR_INSTITUTION_TEXT = "名称が完全に一致する医療機関は見つかりませんでした。もしかして、次の医療機関ですか。"

HISTORY_ROWS = 6  # a table, never a dump
NEAR_SPREAD = 15  # near matches further than this behind the closest are other institutions


def who(name: str | None, number: str) -> str:
    return f"{name} 先生（会員番号 {number}）" if name else f"会員番号 {number} の先生"


def with_redaction(text: str, kind: str, table: Table | None, names: tuple[str, ...] = (), **fields) -> Reply:
    reply = Reply(text, kind, table=table, **fields)
    return replace(reply, redacted=redact(reply.full_text, names))


def history_table(history) -> Table:
    rows = tuple((japanese_date(e.happened_on), LEVEL_JA[e.level], ACTION_JA[e.action])
                 for e in history[-HISTORY_ROWS:])
    return Table(("日付", "段階", "処理"), rows, "経過" if len(history) <= HISTORY_ROWS else "経過（直近）")


# -- members


def member_reply(m, number: str) -> Reply:
    rows = [("氏名", f"{m.name}（{m.kana}）"), ("会員番号", m.member_number),
            ("所属", f"{m.county.name}（{m.prefecture.name}医師会）"), ("会員状態", m.status_label),
            ("勤務先", m.workplace_name or "登録なし")]
    if m.joined_on:
        rows.append(("入会日", japanese_date(m.joined_on)))
    if m.withdrawn_on:
        rows.append(("退会日", japanese_date(m.withdrawn_on)))
    buttons = (Button("入会手続きの状況", CHOICE_BUTTON + "0", f"会員番号{number}の入会手続きの状況"),
               Button("送付先の確認", CHOICE_BUTTON + "1", f"会員番号{number}の送付先"))
    choices = (MemberChoice(number, "application"), MemberChoice(number, "delivery"))
    return with_redaction(f"{who(m.name, number)}の会員情報です。", "lookup", Table(("項目", "内容"), tuple(rows)),
                          (m.name, m.kana), buttons=buttons, choices=choices)


def member_choices(topic: str | None, matches) -> Reply:
    """Several people fit the name (or only near ones): offer them, only those the asker may see.

    Their member numbers are shown whole, since the asker may see them and two 山田 太郎 are told apart
    by nothing else; a pressed button posts the short 「山田　太郎 先生（1300001）」.
    """
    exact = [m for m in matches if m.score >= 100]
    shown = exact if len(exact) > 1 else matches
    buttons, choices, names = [], [], []
    for i, match in enumerate(shown):
        m = match.member
        buttons.append(Button(f"{m.name}（{m.county.name}・会員番号 {m.member_number}）", f"{CHOICE_BUTTON}{i}",
                              echo=f"{m.name} 先生（{m.member_number}）"))
        choices.append(MemberChoice(m.member_number, topic))
        names.append(m.name)
    text = MANY_TEXT if len(exact) > 1 else NEAR_TEXT
    return with_redaction(text, "lookup_choices", None, tuple(names), buttons=tuple(buttons), choices=tuple(choices))


# -- procedures


def applications_reply(apps, name: str | None, number: str) -> Reply:
    names = (name,) if name else ()
    if not apps:
        return with_redaction(f"{who(name, number)}の入会届・異動届の記録はありません。", "lookup", None, names)
    reply = application_reply(apps[0], name)
    if len(apps) > 1:
        others = "、".join(a.application_number for a in apps[1:4])
        reply = replace(reply, text=reply.text + f"\nほかに{len(apps) - 1}件の届があります（{others}）。")
        reply = replace(reply, redacted=redact(reply.full_text, names))
    return reply


def application_reply(app, name: str | None = None) -> Reply:
    text = (f"{who(name, app.member_number)}の{app.kind_label}（申請番号 {app.application_number}、"
            f"{japanese_date(app.submitted_on)}提出）は、現在「{app.status_label}」です。")
    if app.from_county:
        text += f"\n異動元: {app.from_county.name} → 異動先: {app.county.name}"
    if app.return_reason:
        text += f"\n差戻し理由: {app.return_reason}"
    return with_redaction(text, "lookup", history_table(app.history), (name,) if name else ())


# -- delivery settings


def delivery_reply(ds, number: str, publications: tuple[str, ...]) -> Reply:
    text = f"{who(ds.name, number)}の送付区分です。"
    by_pub = {item.publication: item for item in ds.items}
    for pub in publications:
        text += "\n" + by_pub[pub].sentence
    rows = tuple((PUBLICATION_JA[i.publication],
                  "未設定" if i.send is None else ("する" if i.send else "しない"),
                  DESTINATION_JA[i.destination] if i.send and i.destination else "—")
                 for i in (by_pub[p] for p in PUBLICATIONS))
    return with_redaction(text, "lookup", Table(("送付物", "送付", "送付先"), rows), (ds.name,))


# -- institutions and reports


def institution_next(inst, desk: str) -> str | None:
    """What to expect or do next, after the status (which is not said again); None when listed.
    `desk` is how the desk is named (BusinessHours.contact())."""
    if inst.master_status == "in_master":
        return None
    if inst.master_status == "unmatched":
        return f"同一の医療機関とみなされない変更のため、自動では更新されません。{desk}にお問い合わせください。"
    if inst.window is None:
        return f"厚生局への届出日が分からないため、反映の見込みをお示しできません。{desk}にお問い合わせください。"
    w = inst.window
    text = (f"{japanese_date(w.filed_on)}の厚生局への届出から見ると、{japanese_date(w.earliest_night)}〜"
            f"{japanese_date(w.latest_night)}の週末夜間のマスタ更新で反映される見込みです（目安）。")
    if w.latest_delivery is not None:  # the newest master delivered (records/leadtime.py) came without it
        text += f"{w.latest_delivery.year}年{w.latest_delivery.month}月納品分のマスタには載っていません。"
    if w.missed:
        text += f"その納品分までに載る見込みだったため、{desk}にお問い合わせください。"
    elif inst.overdue:
        text += f"見込みの時期を過ぎているため、{desk}にお問い合わせください。"
    return text


def institution_reply(inst, desk: str) -> Reply:
    code = inst.institution_code or "未付番（手入力の医療機関）"
    named = f"{inst.name}（医療機関コード {inst.institution_code}）" if inst.institution_code else \
        f"{inst.name}（手入力の医療機関、コード未付番）"
    text = f"{named}は「{inst.status_label}」です。"
    following = institution_next(inst, desk)
    if following:
        text += "\n" + following
    rows = [("名称", inst.name), ("医療機関コード", code), ("地区", f"{inst.prefecture.name} {inst.county.name}"),
            ("登録元", SOURCE_JA[inst.source]), ("状況", inst.status_label)]
    if inst.filed_on:
        rows.append(("厚生局への届出日", japanese_date(inst.filed_on)))
    if inst.window:
        rows.append(("マスタ更新の見込み", f"{japanese_date(inst.window.earliest_night)}〜"
                                      f"{japanese_date(inst.window.latest_night)}の週末夜間（目安）"))
    if inst.registered_on:
        rows.append(("マスタ反映日", japanese_date(inst.registered_on)))
    return with_redaction(text, "lookup", Table(("項目", "内容"), tuple(rows)))


def institution_choices(topic: str | None, found) -> Reply:
    """Several institutions of that exact name, or (only when none has it) the near ones: those about
    as close as the closest, in the records' order (closeness, then the asker's own prefecture)."""
    exact = [(i, s) for i, s in found if s >= 100]
    shown = exact if len(exact) > 1 else [(i, s) for i, s in found if s >= found[0][1] - NEAR_SPREAD]
    buttons = tuple(Button(f"{inst.name}（{inst.county.name}）", f"{CHOICE_BUTTON}{i}")
                    for i, (inst, _score) in enumerate(shown))
    choices = tuple(InstitutionChoice(inst.name, inst.institution_code, topic) for inst, _score in shown)
    text = MANY_INSTITUTIONS_TEXT if len(exact) > 1 else NEAR_INSTITUTION_TEXT
    return with_redaction(text, "lookup_choices", None, buttons=buttons, choices=choices)


def report_reply(rep) -> Reply:
    text = (f"{rep.institution_name}の{rep.fiscal_year_label}かかりつけ医機能報告（{japanese_date(rep.submitted_on)}提出）"
            f"は、現在「{rep.status_label}」です。")
    if rep.return_reason:
        text += f"\n差戻し理由: {rep.return_reason}"
    return with_redaction(text, "lookup", history_table(rep.history))


# -- link codes


def link_code_reply(issued, name: str, number: str) -> Reply:
    """The code is shown to the staff member once and concealed in everything stored."""
    expires = datetime.fromisoformat(issued.expires_at)
    text = (f"{who(name, number)}の連携コードを発行しました。\n"
            f"連携コード: {issued.code}\n"
            f"有効期限: {japanese_date(expires.date())} {expires:%H:%M} まで（1回限り）\n"
            "先生に、MAMISヘルプデスクのボットへこのコードを送っていただくと、アカウントが会員番号と連携されます。"
            "コードはこの画面でしか表示されません。")
    return replace(with_redaction(text, "link_code", None, (name,)), conceal=(issued.code,))
