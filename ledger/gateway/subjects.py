"""The data-subject tracker: a citizen asks who accessed data about them (谁来拿数据，拿数据干什么).

Access events carry keyed hashes (HMAC-SHA256 with a platform key) of the data subjects' ID numbers,
never the numbers; the log's subject index maps each hash to the log indices of events about that
person. A subject proves control of an ID number to the registrar (in person or through the city's
identity service — outside this system; for the demo the registrar simply issues the token), gets a
subject token, and with it lists the accesses and fetches each one's proof bundle.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from ledger import purposes
from ledger.audit.trail import display_names
from ledger.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from ledger.gateway.masking import subject_hash
from ledger.identity.id_number import validate_id_number
from ledger.identity.parties import new_token
from ledger.log.service import LogService
from ledger.log.subject_index import entry_subjects, index_cursor, subject_tail
from ledger.store.db import Store
from ledger.store.models import LogEntry, LogSubject, Party, SubjectToken
from ledger.types import PartyKind

MAX_PAGE = 500


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SubjectService:
    def __init__(self, *, store: Store, log: LogService, subject_key: bytes, token_days: int = 30) -> None:
        self.store = store
        self.log = log
        self.subject_key = subject_key
        self.token_days = token_days

    def hash_of(self, id_number: str) -> str:
        return subject_hash(self.subject_key, validate_id_number(id_number))

    def issue_token(self, caller: Party, id_number: str) -> dict[str, Any]:
        if caller.kind is not PartyKind.REGISTRAR:
            raise Forbidden("only the registrar issues subject tokens", code="forbidden_role")
        digest = self.hash_of(id_number)
        token = new_token()
        now = datetime.now(UTC)
        expires = now + timedelta(days=self.token_days)
        with self.store.session() as session:
            session.add(
                SubjectToken(
                    token_hash=_token_hash(token),
                    subject_hash=bytes.fromhex(digest[2:]),
                    issued_by=caller.id,
                    created_at=now,
                    expires_at=expires,
                )
            )
        return {"token": token, "subject": digest, "expires_at": expires}

    def authenticate(self, token: str) -> bytes:
        with self.store.read() as session:
            row = session.get(SubjectToken, _token_hash(token))
        if row is None:
            raise Unauthorized("unknown subject token", code="invalid_subject_token")
        expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
        if expires <= datetime.now(UTC):
            raise Unauthorized(
                "the subject token has expired; ask the registrar for a new one", code="token_expired"
            )
        return bytes(row.subject_hash)

    def accesses(self, subject: bytes, *, after: int = -1, limit: int = 100) -> dict[str, Any]:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be 1-{MAX_PAGE}", code="invalid_limit")
        with self.store.read() as session:
            # The index below its cursor, then the live tail past it (``subject_index``).
            tail = subject_tail(session, subject)
            rows = session.execute(
                select(LogEntry.idx, LogEntry.entry)
                .join(LogSubject, LogSubject.idx == LogEntry.idx)
                .where(LogSubject.subject_hash == subject, LogEntry.idx > after, LogEntry.idx < tail.cursor)
                .order_by(LogEntry.idx)
                .limit(limit + 1)
            ).all()
            later = [i for i in tail.indices if i > after][: limit + 1 - len(rows)]
            if later:
                tail_rows = select(LogEntry.idx, LogEntry.entry).where(LogEntry.idx.in_(later))
                rows = [*rows, *session.execute(tail_rows.order_by(LogEntry.idx))]
            entries = [(int(idx), json.loads(entry)) for idx, entry in rows[:limit]]
            names = display_names(session, entries)
        items = []
        for idx, e in entries:
            purpose = e.get("purpose")
            label = _purpose_label(purpose)
            items.append(
                {
                    "index": idx,
                    "time": e.get("time"),
                    "kind": e.get("kind"),
                    "accessor": {"id": e.get("accessor"), "name": names.get(e.get("accessor"))},
                    "provider": {"id": e.get("provider"), "name": names.get(e.get("provider"))},
                    "resource": {"id": e.get("resource"), "name": names.get(e.get("resource"))},
                    "purpose": {"code": purpose, **label},
                    "mode": e.get("mode"),
                    "grant": e.get("grant"),
                    "contract": e.get("contract"),
                    "bundle": f"/v1/subjects/accesses/{idx}/bundle",
                }
            )
        more = len(rows) > limit
        return {
            "subject": "0x" + subject.hex(),
            "accesses": items,
            "next_after": items[-1]["index"] if more and items else None,
        }

    def bundle(self, subject: bytes, index: int) -> dict[str, Any]:
        with self.store.read() as session:
            about = session.get(LogSubject, (subject, index)) is not None
            if not about and index >= index_cursor(session):  # not indexed yet: the entry itself says
                entry = session.scalar(select(LogEntry.entry).where(LogEntry.idx == index))
                about = entry is not None and "0x" + subject.hex() in entry_subjects(bytes(entry))
        if not about:
            raise NotFound(f"no access about you at log index {index}", code="entry_not_found")
        stored = self.log.log.entry(index)
        return self.log.bundle_of(index, json.loads(stored.entry))


def _purpose_label(code: Any) -> dict[str, str | None]:
    if not isinstance(code, str):
        return {"label_zh": None, "label_en": None}
    try:
        p = purposes.get(code)
    except InvalidInput:
        return {"label_zh": None, "label_en": None}
    return {"label_zh": p.label_zh, "label_en": p.label_en}
