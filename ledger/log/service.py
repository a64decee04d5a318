"""The log as the rest of the system sees it: record events, serve checkpoints, proofs and bundles.

Who may do what (DESIGN.md routes): any party reads checkpoints and proofs; the operator (an
external exchange platform's gateway) records batches of access events; a proof bundle goes to the
accessor, the data's provider, regulators and the registrar; raw entries to regulators, the registrar
and the operator.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ledger.errors import ChainError, Conflict, Forbidden, InvalidInput, NotFound, VerificationError
from ledger.log import layout
from ledger.log.anchoring import Anchorer
from ledger.log.events import AccessEvent, EncodedEntry, GatewayEntry
from ledger.log.note import NoteSigner
from ledger.log.reported import CatalogItem, check_reported
from ledger.log.store import Appended, AppendGuard, LogStore, NewEntry
from ledger.store.models import Party, Resource
from ledger.types import PartyKind, utc_text

log = logging.getLogger("sharetrail.log")

MAX_BATCH = 1000  # events per gateway request (POST /v1/access-events)
MAX_TRANSACTION = 20_000  # prepared events appended in one transaction (in-process callers)
MAX_ENTRIES_PAGE = 1000
_LOOKUP_CHUNK = 2000  # names per IN (…) of the batch's party and catalog look-ups (bound parameters)
AUDITORS = (PartyKind.REGULATOR, PartyKind.REGISTRAR)


def hx(value: bytes) -> str:
    return "0x" + value.hex()


def _check_entry_reader(caller: Party) -> None:
    """Raw entries (and entry bundles) are for regulators, the registrar and the operator."""
    if caller.kind not in (*AUDITORS, PartyKind.OPERATOR):
        raise Forbidden(
            "log entries are for regulators, the registrar and the operator", code="forbidden_role"
        )


class NotAnchoredYet(Conflict):
    code = "not_anchored"


class LogService:
    def __init__(
        self,
        *,
        log_store: LogStore,
        anchorer: Anchorer,
        signer: NoteSigner,
        onchain_levels: frozenset[int] = frozenset({4}),
    ) -> None:
        self.log = log_store
        self.anchorer = anchorer
        self.signer = signer
        self.onchain_levels = onchain_levels
        self._anchored = 0  # the largest anchored tree size seen (tiles inside it are served)
        # Fills the bundle's "grant" section (the grant or contract and the signatures that made it).
        self.evidence: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None

    # -- recording ------------------------------------------------------------------------------
    def record_gateway_events(self, caller: Party, events: Sequence[AccessEvent]) -> list[Appended]:
        """A gateway's batch (``POST /v1/access-events``): at most :data:`MAX_BATCH` events, each a
        validated :class:`AccessEvent`, appended in one transaction."""
        self._check_recorder(caller)
        if not events:
            raise InvalidInput("the batch is empty", code="empty_batch")
        if len(events) > MAX_BATCH:
            raise InvalidInput(f"at most {MAX_BATCH} events per batch", code="batch_too_large")
        return self._record_gateway(caller, [e.prepare() for e in events])

    def record_prepared_events(
        self, caller: Party, events: Sequence[GatewayEntry | EncodedEntry]
    ) -> list[Appended]:
        """In-process bulk recording (``sharetrail simulate``): events validated elsewhere — each made
        by :meth:`AccessEvent.prepare`, e.g. in a producer process — up to :data:`MAX_TRANSACTION`
        of them in one transaction. The same checks and the same log entries as
        :meth:`record_gateway_events`; only the transaction is larger, which SQLite pays for per
        commit and per index page touched rather than per row (docs/benchmarks.md, the simulate
        section: raw SQLite with this schema, ~46 µs an event at 10,000 a transaction against
        86–106 µs at 1,000)."""
        self._check_recorder(caller)
        if not events:
            raise InvalidInput("the batch is empty", code="empty_batch")
        if len(events) > MAX_TRANSACTION:
            raise InvalidInput(f"at most {MAX_TRANSACTION} events per transaction", code="batch_too_large")
        return self._record_gateway(caller, events)

    @staticmethod
    def _check_recorder(caller: Party) -> None:
        if caller.kind is not PartyKind.OPERATOR:
            raise Forbidden("only the platform operator may record gateway events", code="forbidden_role")

    def _record_gateway(self, caller: Party, events: Sequence[GatewayEntry | EncodedEntry]) -> list[Appended]:
        # Whatever the batch names must exist and agree with the catalog (ledger/log/reported.py):
        # one read for the whole batch — its distinct parties and resources — never one per event.
        named = {e.accessor for e in events} | {e.provider for e in events if e.provider}
        with self.log.store.read() as session:
            known = _known_parties(session, named)
            catalog = _catalog_items(session, {e.resource for e in events})
        levels = check_reported(events, parties=known, catalog=catalog)
        recorder, onchain = caller.id, self.onchain_levels
        entries = []
        for e, level in zip(events, levels, strict=True):
            if isinstance(e, EncodedEntry):
                if e.recorded_by != recorder:
                    raise InvalidInput(
                        f"event {e.event_id!r} was encoded for recorder {e.recorded_by!r}, not {recorder!r}",
                        code="recorder_mismatch",
                    )
                event, encoded, trail = None, e.leaf, e.trail
            else:
                event, encoded, trail = e.leaf(recorded_by=recorder), None, None
            # request_hash defaults to the entry's own hash: the leaf is a function of the event
            # and the recorder, so a retry of the same event by the same operator matches it.
            entries.append(
                NewEntry(
                    event_id=e.event_id,
                    kind=e.kind,
                    time=e.time,
                    event=event,
                    accessor=e.accessor,
                    resource=e.resource,
                    onchain=level in onchain,  # the catalog's level, whether the event names it or not
                    encoded=encoded,
                    trail=trail,
                )
            )
        return self.record(entries)

    def record(self, entries: Sequence[NewEntry], *, guard: AppendGuard | None = None) -> list[Appended]:
        """Append durably (``guard`` runs inside the append transaction), then start the per-access
        on-chain records of high-level resources and wake the anchoring loop."""
        results = self.log.append(entries, guard=guard)
        if any(entry.onchain for entry in entries):
            try:
                self.anchorer.record_leaves()  # now, not at the next tick; the loop retries on failure
            except (ChainError, VerificationError) as exc:
                log.warning("per-access on-chain recording deferred: %s", exc.message)
        self.anchorer.poke()
        return results

    # -- reading --------------------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        latest = self.log.latest_checkpoint()
        size = self.log.size()
        if latest is None:
            return {
                "tree_size": 0,
                "root": None,
                "anchored": None,
                "note": None,
                "log_size": size,
                "pending": size,
                "verifier_key": self.signer.verifier_key(),
            }
        return {
            "tree_size": latest.size,
            "root": hx(latest.root),
            "anchored": {
                "chain_id": latest.chain_id,
                "contract": latest.contract,
                "tx_hash": latest.tx_hash,
                "block_number": latest.block_number,
                "at": utc_text(latest.anchored_at),
            },
            "note": latest.note,
            "log_size": size,
            "pending": size - latest.size,
            "verifier_key": self.signer.verifier_key(),
        }

    def inclusion(self, index: int, tree_size: int) -> dict[str, Any]:
        if not 0 <= index < tree_size:
            raise InvalidInput(
                f"index {index} is outside a tree of size {tree_size}", code="index_out_of_range"
            )
        leaf, proof = self.log.leaf_and_inclusion_proof(index, tree_size)
        return {
            "leaf_index": index,
            "tree_size": tree_size,
            "leaf_hash": hx(leaf),
            "proof": [hx(h) for h in proof],
            "root": hx(self.log.root(tree_size)),
        }

    def consistency(self, first: int, second: int) -> dict[str, Any]:
        if not 0 < first <= second:
            raise InvalidInput("need 0 < first <= second", code="invalid_sizes")
        return {
            "first": first,
            "second": second,
            "first_root": hx(self.log.root(first)),
            "second_root": hx(self.log.root(second)),
            "proof": [hx(h) for h in self.log.consistency_proof(first, second)],
        }

    def entries(self, caller: Party, start: int, end: int) -> list[dict[str, Any]]:
        _check_entry_reader(caller)
        if start < 0 or end <= start:
            raise InvalidInput("need 0 <= start < end", code="invalid_range")
        if end - start > MAX_ENTRIES_PAGE:
            raise InvalidInput(f"at most {MAX_ENTRIES_PAGE} entries per page", code="range_too_large")
        return [
            {"index": e.index, "event_id": e.event_id, "kind": e.kind, "entry": json.loads(e.entry)}
            for e in self.log.entries(start, end)
        ]

    # -- C2SP tlog-tiles (docs/log.md, "Tiles for standard tooling") ------------------------------
    def tlog_checkpoint(self) -> str:
        """The latest anchored checkpoint as its C2SP signed note (``<prefix>/checkpoint``)."""
        latest = self.log.latest_checkpoint()
        if latest is None:
            raise NotFound("nothing is anchored yet: no checkpoint", code="no_checkpoint")
        return latest.note

    def _tlog_extent(self, level: int, path: str) -> tuple[int, int]:
        """``(index, width)`` of a tlog tile path at ``level``, if the tile lies inside the
        latest anchored tree — what the log has signed, so what is served never changes."""
        if not 0 <= level <= 63:
            raise InvalidInput(f"tile level {level} is outside 0…63", code="invalid_tile_path")
        index, width = layout.parse_tlog_tile_path(path)
        wanted = width or layout.TILE_WIDTH
        # the tile's last hash covers leaves up to (index·256 + wanted)·256^level; the anchored
        # size only grows, so one read of it serves every tile inside it
        end = (index * layout.TILE_WIDTH + wanted) << (layout.TILE_HEIGHT * level)
        if end > self._anchored:
            latest = self.log.latest_checkpoint()
            self._anchored = max(self._anchored, 0 if latest is None else latest.size)
        if end > self._anchored:
            raise NotFound(
                f"tile {level}/{path} is not inside the anchored tree (size {self._anchored})",
                code="tile_not_found",
            )
        return index, wanted

    def tlog_tile(self, level: int, path: str) -> bytes:
        """Tile ``<prefix>/tile/<level>/<path>``: the hashes of tree level ``8·level`` it names."""
        index, width = self._tlog_extent(level, path)
        return self.log.tlog_tile(level, index, width)

    def tlog_entries(self, caller: Party, path: str) -> bytes:
        """Entry bundle ``<prefix>/tile/entries/<path>``: each entry's bytes after its length as a
        big-endian uint16. The entries are the access events themselves, so only the parties that
        may read raw entries may fetch them; an entry longer than 65,535 bytes (an access with
        thousands of subject hashes) cannot be written in a bundle — refused, naming it, rather
        than cut."""
        _check_entry_reader(caller)
        index, width = self._tlog_extent(0, path)
        start = index * layout.TILE_WIDTH
        stored = self.log.entries(start, start + width)
        if len(stored) != width:
            raise NotFound(f"entries {start}…{start + width - 1} are incomplete", code="entry_not_found")
        out = bytearray()
        for e in stored:
            if len(e.entry) > 0xFFFF:
                raise InvalidInput(
                    f"log entry {e.index} is {len(e.entry):,} bytes, more than an entry bundle can hold "
                    "(65,535); read it from GET /v1/log/entries",
                    code="entry_too_large",
                    index=e.index,
                )
            out += len(e.entry).to_bytes(2, "big")
            out += e.entry
        return bytes(out)

    def bundle(self, caller: Party, index: int) -> dict[str, Any]:
        stored = self.log.entry(index)
        entry = json.loads(stored.entry)
        allowed = caller.kind in AUDITORS or caller.id in (entry.get("accessor"), entry.get("provider"))
        if not allowed:
            raise NotFound(f"no log entry at index {index} visible to you", code="entry_not_found")
        return self.bundle_of(index, entry)

    def bundle_of(self, index: int, entry: dict[str, Any]) -> dict[str, Any]:
        """The proof bundle of entry ``index`` (callers check who may see it)."""
        checkpoint = self.log.checkpoint_covering(index)
        if checkpoint is None:
            raise NotAnchoredYet(
                f"log entry {index} is recorded but not anchored yet; retry in a few seconds",
                retry_after=max(1, int(self.anchorer.policy.interval)),
            )
        return {
            "version": 1,
            "entry": entry,
            "leaf_index": index,
            "tree_size": checkpoint.size,
            "inclusion_proof": [hx(h) for h in self.log.inclusion_proof(index, checkpoint.size)],
            "root": hx(checkpoint.root),
            "anchor": {
                "chain_id": checkpoint.chain_id,
                "contract": checkpoint.contract,
                "tx_hash": checkpoint.tx_hash,
                "block_number": checkpoint.block_number,
            },
            "checkpoint_note": checkpoint.note,
            "leaf_record": self._leaf_record(index),
            "grant": self.evidence(entry) if self.evidence is not None else None,
        }

    def _leaf_record(self, index: int) -> dict[str, Any] | None:
        record = self.log.leaf_record(index)
        if record is None or record.tx_hash is None:
            return None
        return {"tx_hash": record.tx_hash, "block_number": record.block_number}


def _chunks(names: set[str]) -> list[list[str]]:
    ordered = sorted(names)
    return [ordered[i : i + _LOOKUP_CHUNK] for i in range(0, len(ordered), _LOOKUP_CHUNK)]


def _known_parties(session: Session, ids: set[str]) -> set[str]:
    known: set[str] = set()
    for chunk in _chunks(ids):
        known.update(session.scalars(select(Party.id).where(Party.id.in_(chunk))))
    return known


def _catalog_items(session: Session, names: set[str]) -> dict[str, CatalogItem]:
    """The catalog entries the names denote, each by id or by catalog code (``AccessEvent.resource``
    takes either); where a name is one entry's id and another's code, the id wins."""
    by_id: dict[str, CatalogItem] = {}
    by_code: dict[str, CatalogItem] = {}
    columns = (Resource.id, Resource.code, Resource.provider_id, Resource.level, Resource.version)
    for chunk in _chunks(names):
        query = select(*columns).where(or_(Resource.id.in_(chunk), Resource.code.in_(chunk)))
        for rid, code, provider, level, version in session.execute(query):
            item = CatalogItem(rid, code, provider, level, version > 0)
            by_id[rid] = item
            by_code[code] = item
    found: dict[str, CatalogItem] = {}
    for name in names:
        match = by_id.get(name) or by_code.get(name)
        if match is not None:
            found[name] = match
    return found
