"""The email policies the service reads and writes mail with: the standard ones, without their repeated costs.

The standard library parses a header anew each time it is asked for (a
bounce check asks for Content-Type hundreds of times per message) and folds
a Thai display name by trying ever shorter encoded words, some 7 ms for the
office's name, which is in the From and Reply-To of every message
(bench/ingest.py). Header objects are immutable, and the same name and value
always parse, and under the same policy fold, the same way: so each is done
once and remembered, within a bounded memory.
"""

from __future__ import annotations

import email.policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.policy import Policy

#: Distinct values remembered before starting afresh: every message brings new subjects and ids.
REMEMBERED = 256


class RememberedHeaders(HeaderRegistry):
    """A header factory that makes each (name, value) header once."""

    def __init__(self, base_class: type[BaseHeader] = BaseHeader) -> None:
        super().__init__(base_class=base_class)
        self._made: dict[tuple[str, object], BaseHeader] = {}

    def __call__(self, name: str, value: object) -> BaseHeader:
        if not isinstance(value, str):  # an Address or a Group object: made as given, never shared
            return super().__call__(name, value)
        key = (name, value)
        header = self._made.get(key)
        if header is None:
            if len(self._made) >= REMEMBERED:
                self._made.clear()
            header = self._made[key] = super().__call__(name, value)
        return header

    def __deepcopy__(self, memo: dict[int, object]) -> RememberedHeaders:
        """One factory for every copy: a copied message (the bounce check makes one) must not copy what it remembers."""
        return self


class RememberedFolding(BaseHeader):
    """A header that folds each non-ASCII value once per policy."""

    _folded: dict[tuple[str, str, Policy], str] = {}

    def fold(self, *, policy: Policy) -> str:
        value = str(self)
        if value.isascii():
            return super().fold(policy=policy)
        key = (self.name, value, policy)
        folded = self._folded.get(key)
        if folded is None:
            if len(self._folded) >= REMEMBERED:
                self._folded.clear()
            folded = self._folded[key] = super().fold(policy=policy)
        return folded


#: For reading: the standard library's default policy.
READING = email.policy.default.clone(header_factory=RememberedHeaders())

#: For writing: SMTP's policy (CRLF line ends, 78-column folding).
WRITING = email.policy.SMTP.clone(header_factory=RememberedHeaders(base_class=RememberedFolding))
