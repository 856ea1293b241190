"""Record lookups in the chat: answer a recognised request from the records, briefly.

Three modules share the work: bot/lookups/requests.py recognises a request in the message,
this module asks `records.lookup.Records` (which checks access and writes the access log) and
handles who may ask, and bot/lookups/replies.py words the result: one or two sentences and a small
table, marked as demo data when it is. A name that fits several people offers them as 「もしかして」
buttons (only people the asker may see). Every refusal and every not-found reads exactly
`records.errors.message_ja`. No Flask, no telegram: the core calls this module.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Callable

from records import access, names
from records.errors import DatabaseMissing, MemberNotFound, RecordsError, RecordUnavailable, message_ja
from records.lookup import Records

from bot.lookups import replies as say
from bot.conversation.actions import RecordsNotLoaded, SignInHint
from bot.conversation.choices import MemberChoice
from bot.desk.hours import BusinessHours
from bot.accounts.linking import IssuedCode, LinkCodes
from bot.lookups.replies import (
    NO_DATA_TEXT, PROMPT_NOTE, PROMPTS, SIGN_IN_TEXT, STAFF_ONLY_LINK_TEXT, WITHDRAWN_LINK_TEXT,
)
from bot.lookups.requests import TOPICS, Request, institution_name_candidates, parse, quick_action
from bot.model import Asker, Reply

# -------------------------------------------------------------------------------- who is asking

def records_asker(asker: Asker) -> access.Asker:
    """The one place where the chat's Asker becomes the records' Asker (whose rules decide access)."""
    label = asker.account or ""
    if asker.role == "staff":
        code = asker.association_code or ""
        level = asker.association_level or ("prefecture" if len(code) == 2 else "county")
        if level == "prefecture":
            return access.Asker.prefecture_staff(code, label=label)
        return access.Asker.county_staff(code, label=label)
    if asker.role == "member" and asker.member_number:
        return access.Asker.member(asker.member_number, label=label)
    if asker.role == "desk":
        return access.Asker.desk(label=label)
    return access.Asker.anonymous()


def may_look_up(asker: Asker) -> bool:
    """Staff, and members whose messaging account is linked; nobody else gets near the records."""
    return asker.role == "staff" or (asker.role == "member" and bool(asker.member_number))


# -------------------------------------------------------------------------------- answering


class StaffOnly(RecordsError):
    """Only secretariat staff issue link codes."""


class WithdrawnMember(RecordsError):
    """A withdrawn member cannot be linked."""


class Lookups:
    """Answers record requests for the core, from `records` (a records.lookup.Records).

    `links` issues one-time link codes and `now` gives the current aware datetime (the core's clock).
    """

    def __init__(self, records: Records, links: LinkCodes, now: Callable[[], datetime], *, desk: str | None = None):
        self.records = records
        self.links = links
        self.now = now
        self.desk = desk or BusinessHours().contact()  # how replies name the desk (bot/desk/hours.py)

    # -- what the core asks

    def wants(self, text: str, asker: Asker, history=()) -> Request | None:
        """The request in `text` if it is one (given the last replies, newest first), else None."""
        pending = self.pending_topic(history)
        if may_look_up(asker):
            topic = quick_action(text)
            if topic:
                return Request(topic=topic)
        request = parse(text, pending)
        exact = self.exact_institution(text, request, pending)
        if exact:
            topic = request.topic if request.topic in ("institution", "report") else "institution"
            return replace(request, topic=topic, institution=exact)
        if request.subject:
            return request
        # A linked doctor asking about themselves: 「私の日医ニュースの送付先は」.
        if (asker.role == "member" and request.topic in ("application", "delivery", "member")
                and (request.self_reference or pending)):
            return replace(request, member_number=asker.member_number)
        return None

    def exact_institution(self, text: str, request: Request, pending: str | None) -> str | None:
        """An institution's exact name in the message, wherever it stands (「かかりつけ医機能報告の状況を
        教えて 千代田やまだ内科クリニック」, or the name alone), unless the message asks about something
        else (a member, an application, a code) or answers a prompt for a member."""
        if (request.member_number or request.application_number or request.institution_code or request.person
                or (request.topic or pending or "institution") not in ("institution", "report")):
            return None
        candidates = institution_name_candidates(text)
        if not candidates:
            return None
        keys = {names.fold(c): c for c in candidates}
        try:
            known = self.records.known_institution_names(list(keys))
        except RecordsError:  # no records yet: nothing is known to be a name
            return None
        return next((keys[k] for k in sorted(known, key=len, reverse=True)), None)

    @staticmethod
    def pending_topic(history) -> str | None:
        return history[0].pending if history else None

    def prompt(self, topic: str, asker: Asker) -> Reply:
        """A quick action (button `lookup:<topic>`): ask for the number or name."""
        return self.answer(Request(topic=topic if topic in TOPICS else None), asker)

    def answer(self, request: Request, asker: Asker) -> Reply:
        """The reply to a recognised request, marked personal: whatever it says (the record, a prompt
        for a number, a refusal, the request to sign in) is about the asker's records, and a group
        never sees it (`Reply.personal`)."""
        return replace(self._reply(request, asker), personal=True)

    def _reply(self, request: Request, asker: Asker) -> Reply:
        """Anonymous askers are told to sign in, untouched records."""
        if not may_look_up(asker):
            if asker.role == "desk":
                return Reply(message_ja(RecordUnavailable()), "lookup")
            return Reply(SIGN_IN_TEXT, "sign_in_required", actions=(SignInHint(),))
        if not request.subject:
            topic = request.topic or "member"
            return Reply(PROMPTS[topic] + PROMPT_NOTE, "lookup_prompt", pending=topic)
        try:
            return self._answer(request, records_asker(asker), asker)
        except DatabaseMissing:
            return Reply(NO_DATA_TEXT, "lookup", actions=(RecordsNotLoaded(),))
        except RecordsError as e:
            return Reply(message_ja(e), "lookup")

    def choose(self, choice, asker: Asker) -> Reply:
        """A lookup's button was pressed: answer for the record behind it (access checked again)."""
        if isinstance(choice, MemberChoice):
            request = Request(topic=choice.topic, member_number=choice.member_number)
        elif choice.code:
            request = Request(topic=choice.topic, institution_code=choice.code)
        else:
            request = Request(topic=choice.topic, institution=choice.name)
        return self.answer(request, asker)

    # -- dispatch

    def _answer(self, req: Request, who: access.Asker, asker: Asker) -> Reply:
        if req.application_number:
            return self._mark(self._application(self.records.application(who, req.application_number)))
        if req.institution_code or req.institution:
            return self._institution_request(req, who)
        number = req.member_number
        if number is None:
            matches = self.records.find_members(who, req.person or "")
            picked = _pick([(m.member, m.score) for m in matches])
            if picked is None:
                return self._member_choices(req, matches)
            if picked is False:
                raise MemberNotFound()
            number = picked.member_number
        topic = req.topic
        if topic == "link_code":
            return self._link_code(asker, who, number)
        if topic == "application":
            return self._mark(self._applications(who, number))
        if topic == "delivery":
            return self._mark(self._delivery(who, number, req.publications))
        return self._mark(self._member(who, number))

    def _institution_request(self, req: Request, who: access.Asker) -> Reply:
        code = req.institution_code
        if code is None:
            found = self.records.find_institutions(who, req.institution or "")
            picked = _pick(found)
            if picked is None:
                return self._institution_choices(req, found)
            if picked is False:
                raise RecordUnavailable("institution")
            if picked.institution_code is None:  # typed in by hand: no code, no report, the entry says why
                return self._mark(self._institution(picked))
            code = picked.institution_code
        if req.topic == "report":
            return self._mark(self._report(self.records.family_doctor_report(who, code)))
        return self._mark(self._institution(self.records.institution(who, code)))

    def _mark(self, reply: Reply) -> Reply:
        """Put the demo-data mark first when the records are the demo's (fiction must say so)."""
        label = self.records.dataset_label()
        if not label:
            return reply
        text = f"【{label}】\n{reply.text}"
        redacted = f"【{label}】\n{reply.redacted}" if reply.redacted else None
        return replace(reply, text=text, redacted=redacted)

    # -- fetching (the records check access); replies.py words what was found

    def _member(self, who, number: str) -> Reply:
        return say.member_reply(self.records.member(who, number), number)

    def _member_choices(self, req: Request, matches) -> Reply:
        return say.member_choices(req.topic, matches)

    def _applications(self, who, number: str) -> Reply:
        apps = self.records.applications(who, number)
        try:
            name = self.records.member(who, number).name
        except RecordUnavailable:  # a transfer's old county sees the application, not the member now
            name = None
        return say.applications_reply(apps, name, number)

    def _application(self, app) -> Reply:
        return say.application_reply(app)

    def _delivery(self, who, number: str, publications: tuple[str, ...]) -> Reply:
        return say.delivery_reply(self.records.delivery_settings(who, number), number, publications)

    def _institution(self, inst) -> Reply:
        return say.institution_reply(inst, self.desk)

    def _institution_choices(self, req: Request, found) -> Reply:
        return say.institution_choices(req.topic, found)

    def _report(self, rep) -> Reply:
        return say.report_reply(rep)

    # -- link codes

    def issue_link_code(self, asker: Asker, member_number: str) -> IssuedCode:
        """Issue a one-time link code for a member the staff member may see; logged, refused alike.

        The member lookup is the access check (and writes the access log); the issue itself is logged
        too, as `link_code_issue`, with the member number masked.
        """
        who = records_asker(asker)
        if asker.role != "staff":
            raise StaffOnly()
        member = self.records.member(who, member_number)
        if member.status == "withdrawn":
            raise WithdrawnMember()
        issued = self.links.issue(member.member_number, asker.account or who.log_ref(), self.now())
        self.records.log.write(who, "link_code_issue", access.mask_member_number(member.member_number), True)
        return issued

    def _link_code(self, asker: Asker, who, number: str) -> Reply:
        try:
            issued = self.issue_link_code(asker, number)
        except StaffOnly:
            return Reply(STAFF_ONLY_LINK_TEXT, "lookup")
        except WithdrawnMember:
            return Reply(WITHDRAWN_LINK_TEXT, "lookup")
        return say.link_code_reply(issued, self.records.member(who, number).name, number)


def _pick(scored):
    """One clear match → it; nothing → False; several or only near matches → None (offer choices)."""
    if not scored:
        return False
    exact = [item for item, score in scored if score >= 100]
    if len(exact) == 1:
        return exact[0]
    return None
