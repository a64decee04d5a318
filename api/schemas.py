"""Request and response models (separate from the ORM models)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from ledger.types import Custody, PartyKind, PartyStatus, utc_text

# A time in a response: RFC 3339, UTC, ``Z`` (a row read back from SQLite has no zone; one just
# written has one — both come out the same)
UtcTime = Annotated[datetime, PlainSerializer(utc_text, return_type=str)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class PartyIn(Strict):
    kind: PartyKind
    name: str = Field(min_length=1, max_length=200)
    uscc: str = Field(min_length=1, max_length=64, description="统一社会信用代码 (GB 32100)")
    address: str | None = Field(default=None, description="the party's own EVM address (client signing)")


class PartyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: PartyKind
    name: str
    uscc: str
    address: str
    custody: Custody
    status: PartyStatus
    registered_tx: str | None
    created_at: UtcTime


class PartyCreated(PartyOut):
    token: str = Field(description="the API token; shown only in this response")


class SuspendIn(Strict):
    reason: str = Field(min_length=1, max_length=2000)


class Health(BaseModel):
    status: str
    chain: str
    chain_id: int
    block_number: int
    database: str
    contracts: dict[str, str]


class AcknowledgeIn(Strict):
    note: str = Field(min_length=1, max_length=2000, description="what was done about the alert")
