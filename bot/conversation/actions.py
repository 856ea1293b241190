"""Actions a reply offers besides its text: typed values that every channel draws its own way.

The web widget gets them as JSON objects with a `type` (the keys it reads: type, label, payload,
desk, phone, tel); Telegram turns an offer into an inline button and the desk's number into a
`tel:` link; hints (sign in, records not loaded) become words the adapter chooses, so no screen
wording or CLI command is written in the core.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, Union

from bot.conversation.buttons import DESK_NAME, HANDOFF_BUTTON, HANDOFF_PAYLOAD, Button
from bot.desk.hours import DESK_PHONE, BusinessHours


@dataclass(frozen=True)
class OfferEscalation:
    """「担当者に問い合わせる」: pressing it asks for a person (button id `handoff`)."""

    type: ClassVar[str] = "offer_escalation"
    label: str = "担当者に問い合わせる"
    phone: str = DESK_PHONE  # the desk's line (setting DESK_PHONE), for channels that show it beside

    @classmethod
    def of(cls, hours: BusinessHours) -> "OfferEscalation":
        return cls(phone=hours.phone)

    @property
    def button(self) -> Button:
        return Button(self.label, HANDOFF_BUTTON, echo=HANDOFF_PAYLOAD)

    def to_dict(self) -> dict:
        return {"type": self.type, "label": self.label, "id": HANDOFF_BUTTON, "payload": HANDOFF_PAYLOAD,
                "desk": DESK_NAME, "phone": self.phone}


@dataclass(frozen=True)
class CallDesk:
    """The desk's telephone, drawn as a link that dials it (`tel:` on phones), with its hours.

    The number and hours are kept in the value (and so in the stored reply), so a reply read back
    later says what it said when it was given."""

    type: ClassVar[str] = "handoff"
    label: str = f"{DESK_NAME}に電話する"
    phone: str = DESK_PHONE
    hours: str = BusinessHours().when()

    @classmethod
    def of(cls, hours: BusinessHours) -> "CallDesk":
        """The phone action for the desk's configured line and hours (bot/desk/hours.py)."""
        return cls(phone=hours.phone, hours=hours.when())

    @property
    def tel(self) -> str:
        return BusinessHours(phone=self.phone).tel

    def to_dict(self) -> dict:
        return {"type": self.type, "label": self.label, "desk": DESK_NAME, "phone": self.phone, "tel": self.tel,
                "hours": self.hours}


@dataclass(frozen=True)
class SignInHint:
    """Record lookups need a signed-in secretariat account: the channel says where to sign in."""

    type: ClassVar[str] = "sign_in"

    def to_dict(self) -> dict:
        return {"type": self.type}


@dataclass(frozen=True)
class RecordsNotLoaded:
    """No member data yet: the channel says what an administrator runs (the web shows the command)."""

    type: ClassVar[str] = "records_missing"

    def to_dict(self) -> dict:
        return {"type": self.type}


Action = Union[OfferEscalation, CallDesk, SignInHint, RecordsNotLoaded]
_BY_TYPE = {cls.type: cls for cls in (OfferEscalation, CallDesk, SignInHint, RecordsNotLoaded)}


def action_from_dict(d: dict) -> Action:
    """A stored action back as its value (stored replies of every version carry `type` and `label`;
    older ones lack the phone and hours, which then take their defaults)."""
    cls = _BY_TYPE[d["type"]]
    return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})
