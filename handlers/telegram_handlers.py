"""What the bot does with each update: commands, free text, button presses, everything else.

Each handler is a thin translation. The work that touches the core or SQLite runs in a worker thread
(`asyncio.to_thread`), so one slow answer never holds up other chats, and it goes through
`TelegramDesk.respond`: an update already answered is skipped (a redelivery after a restart), the
answer's messages are stored in the outbox together with the update's `done` mark, then sent. The
update_id is the core's idempotency key, so a replayed update gets the answer stored the first time.

Personal data only in a private chat with a linked account: in a group the bot answers only when
addressed (a command, a mention, a reply to it), asks as the group (anonymous), and never shows records
there.
"""
from __future__ import annotations

import asyncio
import logging
import re
import traceback

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot import Asker, HelpdeskError
from bot.buttons import HANDOFF_PAYLOAD
from handlers.telegram_render import FEEDBACK_DATA, GROUP_PRIVATE, LINK_HINT, NOTIFY_DATA, render_text
from helpdesk.errors import describe
from records.errors import RecordsError

log = logging.getLogger("helpdesk.telegram")

CHANNEL = "telegram"
APOLOGY = "一時的なエラーが発生しました。しばらくしてからもう一度お試しください。"
START_TEXT = (
    "MAMISヘルプデスクです。MAMIS（医師会会員情報システム）についてのご質問に、ナレッジベースの記事から"
    "お答えします。知りたいことを文章で送ってください。\n\n"
    "医師会事務局が発行する連携コードでアカウントを連携すると、ご自身の会員情報・入会手続きの状況・"
    "送付先も確認できます。コマンドの一覧は /help をご覧ください。"
)
HELP_TEXT = (
    "使い方\n"
    "・知りたいことを文章で送ってください（例：「日医ニュースの送付先を自宅に変更したい」）。\n"
    "・/link 連携コード … 医師会事務局が発行した連携コードでアカウントを連携します\n"
    "・/status … ご自身の会員情報と入会手続きの状況（連携後）\n"
    "・/delivery … 日医ニュース・日本医師会雑誌の送付先（連携後）\n"
    "・/notify … 手続きの状況が変わったときや新しいリリースノートのお知らせ（オン・オフ）\n"
    "・/human … 担当者（MAMIS運営事務局）へのご相談\n"
    "・/unlink … 連携の解除"
)
NON_TEXT = "申し訳ありません。スタンプ・画像・音声・ファイルにはお答えできません。ご質問を文章で送ってください。"
EDITED = "メッセージの編集には対応していません。お手数ですが、新しいメッセージとして送り直してください。"
RATE_LIMITED = "短い時間にたくさんのメッセージが届きました。1分ほどおいてから、もう一度お送りください。"
LINK_USAGE = "連携コードを続けて送ってください（例：/link ABCD2345）。"
LINK_TOO_MANY = "連携の試行が多すぎます。しばらくしてから、もう一度お試しください。"
LINKED = ("アカウントを連携しました（会員番号 {number}）。/status で会員情報と入会手続きの状況を、"
          "/delivery で送付先を確認できます。手続きの状況のお知らせを受け取るには /notify on を送ってください。")
UNLINKED = "連携を解除しました。ご自身の情報を確認するには、あらためて連携コードで連携してください。"
NOT_LINKED = "このアカウントは連携されていません。"
NOTIFY_ON = ("通知をオンにしました。新しいリリースノートが公開されたとき{linked}にお知らせします。"
             "止めるには /notify off を送ってください。")
NOTIFY_ON_LINKED = "と、入会手続きなどの状況が変わったとき"
NOTIFY_OFF = "通知をオフにしました。再開するには /notify on を送ってください。"
NOTIFY_STATE = "通知は現在{state}です。"
FEEDBACK_THANKS = "ご評価ありがとうございます。"
FEEDBACK_GONE = "この回答には評価を送れませんでした。"
# Canned questions for the commands that are record lookups: the core reads them like any message.
STATUS_QUESTIONS = ("私の会員情報", "私の入会手続きの状況")
DELIVERY_QUESTION = "私の送付先"
# Replies that carry or ask for personal data, never shown in a group.
PERSONAL_KINDS = {"lookup", "lookup_choices", "lookup_prompt", "link_code", "sign_in_required"}


def desk(context: ContextTypes.DEFAULT_TYPE):
    return context.application.bot_data["helpdesk"]


def is_private(chat) -> bool:
    return chat is not None and chat.type == "private"


async def respond(update: Update, context, compute) -> None:
    """Compute the messages answering `update` (in a thread), store them with its done mark, send."""
    hd = desk(context)
    hd.responded.add(update.update_id)
    rows = await asyncio.to_thread(hd.answer, update.update_id, update.effective_chat.id, compute)
    if rows:
        await hd.sender.send_all(rows)


# -- before and after every update ------------------------------------------------------------------

async def admit(update: Update, context) -> None:
    """Group -1: a chat that wrote again is reachable again; a user over the rate limit is told once."""
    hd = desk(context)
    chat, user = update.effective_chat, update.effective_user
    if chat is not None and str(chat.id) in hd.sender.unreachable:
        hd.sender.unreachable.discard(str(chat.id))
        await asyncio.to_thread(hd.outbox.reachable, chat.id, hd.now())
    if user is None or hd.allow(user.id):
        return
    if update.callback_query:
        await quietly(update.callback_query.answer(RATE_LIMITED))
    if chat is not None and hd.warn_once(user.id):
        await respond(update, context, lambda: render_text(RATE_LIMITED))
    else:
        await asyncio.to_thread(hd.outbox.done, update.update_id, hd.now())
    raise ApplicationHandlerStop


async def finish(update: Update, context) -> None:
    """Last group: an update nothing answered (a group message not addressed to us) is done too."""
    hd = desk(context)
    if update.update_id in hd.responded:
        hd.responded.discard(update.update_id)
    else:
        await asyncio.to_thread(hd.outbox.done, update.update_id, hd.now())


async def on_error(update: object, context) -> None:
    """One place for every failure: log it without personal data, apologise in Japanese."""
    error = context.error
    frames = "".join(traceback.format_tb(error.__traceback__)) if error else ""
    log.error("update %s failed with %s\n%s", getattr(update, "update_id", "-"), type(error).__name__, frames)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            await respond(update, context, lambda: render_text(APOLOGY))
        except Exception as e:  # the apology itself failed (Telegram unreachable): the drain retries
            log.error("could not apologise for update %s: %s", update.update_id, type(e).__name__)


async def quietly(coroutine) -> None:
    """Acknowledge a button press; a second acknowledgement (after a restart) is refused, and that is fine."""
    try:
        await coroutine
    except TelegramError:
        pass


# -- commands ---------------------------------------------------------------------------------------------

async def start(update: Update, context) -> None:
    if context.args and is_private(update.effective_chat):
        return await link_with(update, context, context.args[0])
    await respond(update, context, lambda: render_text(START_TEXT))


async def help_command(update: Update, context) -> None:
    await respond(update, context, lambda: render_text(HELP_TEXT))


async def link(update: Update, context) -> None:
    if not is_private(update.effective_chat):
        return await respond(update, context, lambda: render_text(GROUP_PRIVATE))
    if not context.args:
        return await respond(update, context, lambda: render_text(LINK_USAGE))
    await link_with(update, context, "".join(context.args))


async def link_with(update: Update, context, code: str) -> None:
    hd = desk(context)
    chat_id, user_id = update.effective_chat.id, update.effective_user.id

    def compute():
        if not hd.allow_link(chat_id):
            return render_text(LINK_TOO_MANY)
        try:
            linked = hd.core.consume_link_code(code, CHANNEL, str(user_id))
        except (HelpdeskError, RecordsError) as e:
            return render_text(describe(e).message)
        return render_text(LINKED.format(number=linked.member_number))

    await respond(update, context, compute)


async def unlink(update: Update, context) -> None:
    hd = desk(context)
    user_id = update.effective_user.id

    def compute():
        return render_text(UNLINKED if hd.core.links.unlink(CHANNEL, str(user_id)) else NOT_LINKED)

    await respond(update, context, compute)


async def status(update: Update, context) -> None:
    await lookup(update, context, STATUS_QUESTIONS)


async def delivery(update: Update, context) -> None:
    await lookup(update, context, (DELIVERY_QUESTION,))


async def lookup(update: Update, context, questions) -> None:
    """A command that is a record lookup: only in a private chat, only once linked."""
    hd = desk(context)
    chat, user = update.effective_chat, update.effective_user
    if not is_private(chat):
        return await respond(update, context, lambda: render_text(GROUP_PRIVATE))

    def compute():
        if hd.core.linked_asker(CHANNEL, str(user.id)).role != "member":
            return render_text(LINK_HINT)
        return [m for n, q in enumerate(questions) for m in hd.ask(update.update_id, chat, user.id, q, n=n)]

    await respond(update, context, compute)


async def human(update: Update, context) -> None:
    await text_to_core(update, context, HANDOFF_PAYLOAD)


async def notify(update: Update, context) -> None:
    hd = desk(context)
    chat, user = update.effective_chat, update.effective_user
    if not is_private(chat):
        return await respond(update, context, lambda: render_text(GROUP_PRIVATE))
    wanted = (context.args or [""])[0].lower()
    on = {"on": True, "オン": True, "off": False, "オフ": False}.get(wanted)

    def compute():
        if on is None:
            state = "オン" if hd.outbox.notify_on(chat.id) else "オフ"
            return render_text(NOTIFY_STATE.format(state=state),
                               [[("通知をオンにする", NOTIFY_DATA + "on"), ("通知をオフにする", NOTIFY_DATA + "off")]])
        return hd.set_notify(chat.id, user.id, on)

    await respond(update, context, compute)


# -- messages ------------------------------------------------------------------------------------------

async def text(update: Update, context) -> None:
    message = update.effective_message
    if is_private(update.effective_chat):
        return await text_to_core(update, context, message.text)
    addressed = addressed_text(message, desk(context))
    if addressed is not None:
        await text_to_core(update, context, addressed or "使い方")


def addressed_text(message, hd) -> str | None:
    """The text of a group message meant for the bot (mention removed), or None if it was not."""
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == hd.bot_id:
        return message.text
    mention = f"@{hd.username}"
    if hd.username and mention.lower() in message.text.lower():
        return re.sub(re.escape(mention), " ", message.text, flags=re.I).strip()
    return None


async def text_to_core(update: Update, context, text: str, button: str | None = None) -> None:
    hd = desk(context)
    chat, user = update.effective_chat, update.effective_user
    await respond(update, context, lambda: hd.ask(update.update_id, chat, user.id, text, button=button))


async def other(update: Update, context) -> None:
    """A sticker, photo, voice message, document…: one short polite answer (in a group, only if addressed)."""
    message = update.effective_message
    replied = message.reply_to_message
    if is_private(update.effective_chat) or (replied and replied.from_user and replied.from_user.id == desk(context).bot_id):
        await respond(update, context, lambda: render_text(NON_TEXT))


async def edited(update: Update, context) -> None:
    if is_private(update.effective_chat):
        await respond(update, context, lambda: render_text(EDITED))


async def press(update: Update, context) -> None:
    """A pressed inline button: acknowledged always (the spinner stops), then acted on."""
    hd = desk(context)
    query = update.callback_query
    data = query.data or ""
    if data.startswith(FEEDBACK_DATA):
        helpful, _, message_id = data[len(FEEDBACK_DATA):].partition(":")
        ok = await asyncio.to_thread(hd.feedback, query.message.chat, query.from_user.id, message_id, helpful == "1")
        await quietly(query.answer(FEEDBACK_THANKS if ok else FEEDBACK_GONE))
        if ok and helpful != "1":  # 役に立たなかった: what to try next (もしかして, rephrasing, the desk)
            await respond(update, context, lambda: hd.next_step(query.message.chat, query.from_user.id, message_id))
        return
    await quietly(query.answer())
    if query.message is None:
        return
    if data.startswith(NOTIFY_DATA):
        on = data[len(NOTIFY_DATA):] == "on"
        if not is_private(query.message.chat):
            return
        return await respond(update, context, lambda: hd.set_notify(query.message.chat.id, query.from_user.id, on))
    label = button_label(query.message, data)
    await text_to_core(update, context, label or data, button=data)


def button_label(message, data: str) -> str | None:
    markup = message.reply_markup
    for row in (markup.inline_keyboard if markup else ()):
        for button in row:
            if button.callback_data == data:
                return button.text
    return None


def group_asker(chat_id) -> Asker:
    """A group asks as itself, anonymously: records are never looked up there."""
    return Asker(account=f"{CHANNEL}:{chat_id}")
