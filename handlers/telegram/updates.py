"""What the bot does with each update: commands, free text, button presses, everything else.

Each handler is a thin translation: what an update asks for is a job of `Work`
(handlers/telegram/work.py), run in a worker process so that one slow answer never holds up other
chats. `respond` hands the job over with plain data; the worker skips an update already answered (a
redelivery after a restart) or stores the answer's messages in the outbox together with the update's
`done` mark; then they are sent from here.

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

from bot.desk.handoff import HUMAN_COMMAND
from bot.desk.hours import BusinessHours
from handlers.telegram.render import FEEDBACK_DATA, GROUP_PRIVATE, NOTIFY_DATA, RELINK_DATA, RELINK_NO
from handlers.telegram.work import RELINK_KEPT, ChatRef, WorkFailed
from helpdesk.errors import by_code

log = logging.getLogger("helpdesk.telegram")

APOLOGY = by_code("telegram_failed").message
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
    "・/human … 担当者（MAMIS運営事務局）へのご相談。お電話は {phone}（{when}）\n"
    "・/unlink … 連携の解除"
)
NON_TEXT = "申し訳ありません。スタンプ・画像・音声・ファイルにはお答えできません。ご質問を文章で送ってください。"
EDITED = "メッセージの編集には対応していません。お手数ですが、新しいメッセージとして送り直してください。"
RATE_LIMITED = by_code("telegram_rate_limited").message
LINK_USAGE = "連携コードを続けて送ってください（例：/link ABCD2345）。"
LINK_TOO_MANY = by_code("link_rate_limited").message
FEEDBACK_THANKS = "ご評価ありがとうございます。"
FEEDBACK_GONE = by_code("feedback_failed").message
# Canned questions for the commands that are record lookups: the core reads them like any message.
STATUS_QUESTIONS = ("私の会員情報", "私の入会手続きの状況")
DELIVERY_QUESTION = "私の送付先"


def desk(context: ContextTypes.DEFAULT_TYPE):
    return context.application.bot_data["helpdesk"]


def is_private(chat) -> bool:
    return chat is not None and chat.type == "private"


async def respond(update: Update, context, job: str, *args) -> None:
    """Run `job` (a method of Work) for `update` in a worker, which stores its messages with the
    update's done mark; send them."""
    hd = desk(context)
    hd.responded.add(update.update_id)
    rows = await hd.work("respond", update.update_id, update.effective_chat.id, job, args)
    if rows:
        await hd.sender.send_all(rows)


# -- before and after every update ------------------------------------------------------------------

def forged(update: Update) -> bool:
    """A private chat's id is its user's id: Telegram never sends an update that says otherwise, so
    one that does was made up (posted to a webhook) to read someone else's records."""
    chat, user = update.effective_chat, update.effective_user
    return is_private(chat) and user is not None and chat.id != user.id


async def admit(update: Update, context) -> None:
    """Group -1: a forged update is set aside unanswered; a chat that wrote again is reachable again;
    a user over the rate limit is told once."""
    hd = desk(context)
    chat, user = update.effective_chat, update.effective_user
    if forged(update):
        log.warning("update %s set aside: a private chat whose id is not its sender's", update.update_id)
        await asyncio.to_thread(hd.outbox.unanswered, update.update_id, hd.now())
        raise ApplicationHandlerStop
    if chat is not None and str(chat.id) in hd.sender.unreachable:
        hd.sender.unreachable.discard(str(chat.id))
        await asyncio.to_thread(hd.outbox.reachable, chat.id, hd.now())
    if user is None or hd.allow(user.id):
        return
    if update.callback_query:
        await quietly(update.callback_query.answer(RATE_LIMITED))
    if chat is not None and hd.warn_once(user.id):
        await respond(update, context, "say", RATE_LIMITED)
    else:
        await asyncio.to_thread(hd.outbox.unanswered, update.update_id, hd.now())
    raise ApplicationHandlerStop


async def finish(update: Update, context) -> None:
    """Last group: an update nothing answered (a group message not addressed to us) is done too, and
    its content dropped."""
    hd = desk(context)
    if update.update_id in hd.responded:
        hd.responded.discard(update.update_id)
    else:
        await asyncio.to_thread(hd.outbox.unanswered, update.update_id, hd.now())


async def on_error(update: object, context) -> None:
    """One place for every failure: log it without personal data, apologise in Japanese."""
    error = context.error
    frames = "".join(traceback.format_tb(error.__traceback__)) if error else ""
    if isinstance(error, WorkFailed):  # raised in a worker: its own frames, and the type it had there
        name, frames = error.original, error.frames + frames
    else:
        name = type(error).__name__
    log.error("update %s failed with %s\n%s", getattr(update, "update_id", "-"), name, frames)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            await respond(update, context, "say", APOLOGY)
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
    if context.args:  # a deep link's code, sent in a group
        return await link(update, context)
    await respond(update, context, "say", START_TEXT)


async def help_command(update: Update, context) -> None:
    hours = BusinessHours.from_settings(desk(context).services.config)  # the desk's line is a setting
    await respond(update, context, "say", HELP_TEXT.format(phone=hours.phone, when=hours.when()))


async def link(update: Update, context) -> None:
    """Only in a private chat. A code sent in a group has been seen by its members: it is spent."""
    private = is_private(update.effective_chat)
    if not context.args:
        return await respond(update, context, "say", LINK_USAGE if private else GROUP_PRIVATE)
    code = "".join(context.args)
    if private:
        return await link_with(update, context, code)
    if not desk(context).allow_link(update.effective_chat.id):
        return await respond(update, context, "say", LINK_TOO_MANY)
    await respond(update, context, "spend_code", code)


async def link_with(update: Update, context, code: str, confirmed: bool = False) -> None:
    if not desk(context).allow_link(update.effective_chat.id):
        return await respond(update, context, "say", LINK_TOO_MANY)
    await respond(update, context, "link", update.effective_chat.id, update.effective_user.id, code, confirmed)


async def unlink(update: Update, context) -> None:
    """Only in a private chat, refused in a group like /link (without saying whether there was a link)."""
    if not is_private(update.effective_chat):
        return await respond(update, context, "say", GROUP_PRIVATE)
    await respond(update, context, "unlink", update.effective_chat.id, update.effective_user.id)


async def status(update: Update, context) -> None:
    await lookup(update, context, STATUS_QUESTIONS)


async def delivery(update: Update, context) -> None:
    await lookup(update, context, (DELIVERY_QUESTION,))


async def lookup(update: Update, context, questions) -> None:
    """A command that is a record lookup: only in a private chat, only once linked."""
    chat = update.effective_chat
    if not is_private(chat):
        return await respond(update, context, "say", GROUP_PRIVATE)
    await respond(update, context, "lookup", update.update_id, ChatRef.of(chat), update.effective_user.id, questions)


async def human(update: Update, context) -> None:
    await text_to_core(update, context, HUMAN_COMMAND)  # the core records the reason: the command


async def notify(update: Update, context) -> None:
    chat = update.effective_chat
    if not is_private(chat):
        return await respond(update, context, "say", GROUP_PRIVATE)
    wanted = (context.args or [""])[0].lower()
    on = {"on": True, "オン": True, "off": False, "オフ": False}.get(wanted)
    if on is None:
        return await respond(update, context, "notify_state", chat.id)
    await respond(update, context, "set_notify", chat.id, update.effective_user.id, on)


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
    await respond(update, context, "ask", update.update_id, ChatRef.of(update.effective_chat),
                  update.effective_user.id, text, button)


async def other(update: Update, context) -> None:
    """A sticker, photo, voice message, document…: one short polite answer (in a group, only if addressed)."""
    message = update.effective_message
    replied = message.reply_to_message
    if is_private(update.effective_chat) or (replied and replied.from_user and replied.from_user.id == desk(context).bot_id):
        await respond(update, context, "say", NON_TEXT)


async def edited(update: Update, context) -> None:
    if is_private(update.effective_chat):
        await respond(update, context, "say", EDITED)


async def press(update: Update, context) -> None:
    """A pressed inline button: its keyboard removed, acknowledged always (the spinner stops), then
    acted on."""
    hd = desk(context)
    query = update.callback_query
    data = query.data or ""
    if query.message is not None:  # a button does its work once: the pressed keyboard goes
        await quietly(query.edit_message_reply_markup(reply_markup=None))
    if data.startswith(FEEDBACK_DATA):
        helpful, _, message_id = data[len(FEEDBACK_DATA):].partition(":")
        chat = ChatRef.of(query.message.chat)
        ok = await hd.work("feedback", chat, query.from_user.id, message_id, helpful == "1")
        await quietly(query.answer(FEEDBACK_THANKS if ok else FEEDBACK_GONE))
        if ok and helpful != "1":  # 役に立たなかった: what to try next (もしかして, rephrasing, the desk)
            await respond(update, context, "next_step", chat, query.from_user.id, message_id)
        return
    await quietly(query.answer())
    if query.message is None:
        return
    if data.startswith(NOTIFY_DATA):
        on = data[len(NOTIFY_DATA):] == "on"
        if not is_private(query.message.chat):
            return
        return await respond(update, context, "set_notify", query.message.chat.id, query.from_user.id, on)
    if data.startswith(RELINK_DATA):  # 切り替える / やめる, asked by /link for an account already linked
        code = data[len(RELINK_DATA):]
        if not is_private(query.message.chat):
            return
        if code == RELINK_NO:
            return await respond(update, context, "say", RELINK_KEPT)
        return await link_with(update, context, code, confirmed=True)
    label = button_label(query.message, data)
    await text_to_core(update, context, label or data, button=data)


def button_label(message, data: str) -> str | None:
    markup = message.reply_markup
    for row in (markup.inline_keyboard if markup else ()):
        for button in row:
            if button.callback_data == data:
                return button.text
    return None
