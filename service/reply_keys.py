"""Reply keys: a verifiable tag on every message that expects an answer.

A key binds (purpose, meeting, person) and carries an HMAC of the three under
the office's own secret (`office_secret`: the configured secret bound to the
office's mailbox, so offices given one secret still never accept each
other's keys), so a reply can be tied to what it answers and to whom the
question was sent, and nobody can make up a key for someone else. Keys travel
in the Message-ID (replies quote it back in In-Reply-To/References), in a
plus-address Reply-To, and as a visible reference line in the text, because
some clients drop one or the other.

A key reads like ``inv-m2569-11-p017-k3j4h2a9``: short, lower-case ASCII,
safe in a local part and a Message-ID.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

_PART = r"[a-z0-9]+(?:_[a-z0-9]+)*"
_KEY = re.compile(rf"\b({_PART})-({_PART}(?:-{_PART})*?)-({_PART})-([a-z2-7]{{8}})\b")
_SAFE = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class ReplyKey:
    """What a reply answers: `purpose` (e.g. "inv", "appr"), `meeting` and `person` ids."""

    purpose: str
    meeting: str
    person: str

    def token(self, secret: bytes) -> str:
        return f"{self.purpose}-{self.meeting}-{self.person}-{_mac(secret, self)}"


def safe_id(value: str) -> str:
    """An id made fit for a key: lower-case letters and digits, `_` between runs."""
    return _SAFE.sub("_", value.lower()).strip("_") or "x"


def office_secret(secret: bytes, mailbox: str) -> bytes:
    """The secret an office signs its keys with: the configured one, bound to the office's shared mailbox."""
    return hmac.new(secret, f"office|{mailbox.lower()}".encode(), hashlib.sha256).digest()


def find_keys(text: str, secret: bytes) -> list[ReplyKey]:
    """Every genuine key in `text`, in order, without repeats; forged ones are ignored."""
    found: list[ReplyKey] = []
    for match in _KEY.finditer(text.lower()):
        key = ReplyKey(match.group(1), match.group(2), match.group(3))
        if hmac.compare_digest(match.group(4), _mac(secret, key)) and key not in found:
            found.append(key)
    return found


def _mac(secret: bytes, key: ReplyKey) -> str:
    digest = hmac.new(secret, f"{key.purpose}|{key.meeting}|{key.person}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:8]
