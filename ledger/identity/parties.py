"""Parties: registration (in the store and on chain), token authentication, suspension.

A party is identified by its unified social credit code and an EVM address. Custodial parties get a
secp256k1 key generated here and sealed by the :class:`KeyVault`; client parties bring their own
address and sign in client mode. The API token is returned once, at creation; only its SHA-256 is
stored. On-chain status is authoritative: a party suspended in ``PartyRegistry`` is refused even if
the database still says active (DESIGN.md trust model — the chain is the shared source of truth).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
import uuid
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from web3 import Web3
from web3.contract.contract import Contract

from ledger.chain.client import Chain
from ledger.errors import (
    ChainError,
    Conflict,
    ContractRevert,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
)
from ledger.identity.uscc import validate_uscc
from ledger.identity.vault import KeyVault
from ledger.store.db import Store
from ledger.store.models import Party
from ledger.text import display_text_problem
from ledger.types import Custody, PartyKind, PartyStatus

TOKEN_PREFIX = "st_"
_TOKEN_CACHE = 10_000  # tokens remembered at most (all forgotten at once past it)
log = logging.getLogger("sharetrail.parties")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def party_id_bytes32(party_id: str) -> bytes:
    return bytes(16) + bytes.fromhex(party_id)


def uscc_hash(uscc: str) -> bytes:
    return keccak(text=uscc)


@dataclass(frozen=True)
class NewParty:
    kind: PartyKind
    name: str
    uscc: str
    address: str | None = None


def _suspended(party: Party) -> Forbidden:
    return Forbidden(f"party {party.id} is suspended on chain", code="party_suspended")


class PartyService:
    def __init__(
        self, *, store: Store, vault: KeyVault, chain: Chain, registry: Contract, cache_seconds: float = 2.0
    ) -> None:
        self.store = store
        self.vault = vault
        self.chain = chain
        self.registry = registry
        self._cache_seconds = cache_seconds
        self._active: dict[str, tuple[float, bool]] = {}
        # token hash -> (when read, party): a party's row is its identity (written once; only the
        # status column changes, and the status that counts is the chain's, cached above)
        self._tokens: dict[str, tuple[float, Party]] = {}
        self._lock = threading.Lock()

    # -- keys -------------------------------------------------------------------------------------
    def signer(self, party: Party) -> LocalAccount:
        """The party's custodial key; refused for client-custody parties."""
        if party.key_ciphertext is None:
            raise Conflict(f"party {party.id} keeps its own key; use client signing", code="client_custody")
        return self.vault.account(party.key_ciphertext, party.id)

    # -- creation ---------------------------------------------------------------------------------
    def _insert(self, new: NewParty, *, token: str, party_id: str | None = None) -> Party:
        uscc = validate_uscc(new.uscc)
        name = new.name.strip()
        problem = display_text_problem(name)
        if problem is not None:
            raise InvalidInput(f"name {problem}", code="invalid_name")
        pid = party_id or uuid.uuid4().hex
        if new.address is not None:
            if not Web3.is_address(new.address):
                raise InvalidInput(f"{new.address!r} is not an EVM address", code="invalid_address")
            if int(new.address, 16) == 0:  # no key signs for it: the registry would revert (ZeroAddress)
                raise InvalidInput("the zero address cannot be a party's address", code="invalid_address")
            address, ciphertext, custody = Web3.to_checksum_address(new.address), None, Custody.CLIENT
        else:
            account, sealed = self.vault.new_account(pid)
            address, ciphertext, custody = account.address, sealed, Custody.CUSTODIAL
        party = Party(
            id=pid,
            kind=new.kind,
            name=name,
            uscc=uscc,
            address=address,
            custody=custody,
            status=PartyStatus.ACTIVE,
            key_ciphertext=ciphertext,
            token_hash=hash_token(token),
        )
        try:
            with self.store.session() as session:
                for column, value, code in (
                    (Party.uscc, uscc, "uscc_taken"),
                    (Party.address, address, "address_taken"),
                ):
                    if session.scalar(select(Party.id).where(column == value)) is not None:
                        raise Conflict(f"a party with {column.key} {value} is already registered", code=code)
                session.add(party)
        except IntegrityError as exc:
            raise Conflict(
                "a party with this credit code, address or token already exists", code="party_exists"
            ) from exc
        return party

    def bootstrap_registrar(self, *, name: str, uscc: str, token: str) -> Party:
        """Create the first registrar in the store (registered on chain by the registry's constructor)."""
        return self._insert(NewParty(PartyKind.REGISTRAR, name, uscc), token=token)

    def register(self, actor: Party, new: NewParty) -> tuple[Party, str]:
        """Register a party on behalf of a registrar; returns the party and its token (shown once)."""
        if actor.kind is not PartyKind.REGISTRAR:
            raise Forbidden("only the registrar may register parties", code="forbidden_role")
        token = new_token()
        party = self._insert(new, token=token)
        try:
            self._register_on_chain(actor, party)
        except BaseException:
            with self.store.session() as session:
                row = session.get(Party, party.id)
                if row is not None:
                    session.delete(row)
            raise
        return party, token

    def _register_on_chain(self, registrar: Party, party: Party) -> None:
        fn = self.registry.functions.register(
            party.address, party.kind.chain_value, party_id_bytes32(party.id), uscc_hash(party.uscc)
        )
        receipt = self.chain.transact(fn, self.signer(registrar))
        with self.store.session() as session:
            row = session.get(Party, party.id)
            assert row is not None
            row.registered_tx = receipt.tx_hash
        party.registered_tx = receipt.tx_hash

    def reconcile(self) -> int:
        """Finish registrations interrupted by a crash between the store and the chain."""
        with self.store.session() as session:
            pending = list(
                session.scalars(
                    select(Party).where(Party.registered_tx.is_(None), Party.kind != PartyKind.REGISTRAR)
                )
            )
            registrar = session.scalar(select(Party).where(Party.kind == PartyKind.REGISTRAR))
        done = 0
        for party in pending:
            if registrar is None:
                break
            info = self.chain.call(self.registry.functions.partyOf(party.address))
            if info[0] == 0:
                self._register_on_chain(registrar, party)
                done += 1
        return done

    # -- authentication ---------------------------------------------------------------------------
    def authenticate(self, token: str) -> Party:
        """The party a token belongs to, if it is active on chain. The token's party is remembered
        for ``cache_seconds`` (as its on-chain status is): an API request then costs no database
        read; a token no longer in the database stops working within that time."""
        digest = hash_token(token)
        party = self._remembered(digest, time.monotonic())
        if party is None:
            read_at = time.monotonic()
            with self.store.read() as session:
                party = session.scalar(select(Party).where(Party.token_hash == digest))
            if party is None:
                raise Unauthorized("unknown API token", code="invalid_token")
            with self._lock:
                if len(self._tokens) >= _TOKEN_CACHE:
                    self._tokens.clear()
                self._tokens[digest] = (read_at, party)
        if not self.is_active_on_chain(party.address):
            raise _suspended(party)
        return party

    def authenticate_cached(self, token: str) -> Party | None:
        """:meth:`authenticate` from this process's caches alone — no database read, no chain call —
        or None if it would need one (the caller then calls :meth:`authenticate` where blocking is
        allowed). Raises exactly what :meth:`authenticate` would for a cached suspended party."""
        now = time.monotonic()
        party = self._remembered(hash_token(token), now)
        status = None if party is None else self._active.get(party.address)
        if party is None or status is None or now - status[0] >= self._cache_seconds:
            return None
        if not status[1]:
            raise _suspended(party)
        return party

    def _remembered(self, digest: str, now: float) -> Party | None:
        """The party of a token hash read less than ``cache_seconds`` before ``now``."""
        hit = self._tokens.get(digest)
        return hit[1] if hit is not None and now - hit[0] < self._cache_seconds else None

    def is_active_on_chain(self, address: str) -> bool:
        """The party's status in ``PartyRegistry``, cached for ``cache_seconds``.

        While the chain cannot be reached, the status last read from it stands (stale-if-error) and
        is not asked again for ``cache_seconds``: recording what happened must not stop with the chain
        (issue 8: ingestion continues through a node outage). A party never seen on chain by this
        process is refused (the ChainError, 503) until the chain answers."""
        now = time.monotonic()
        with self._lock:
            hit = self._active.get(address)
            if hit is not None and now - hit[0] < self._cache_seconds:
                return hit[1]
        try:
            active = bool(self.chain.call(self.registry.functions.isActive(address)))
        except ContractRevert:
            raise
        except ChainError as exc:
            if hit is None:
                raise
            log.warning("chain unreachable (%s); party %s keeps its last known status", exc.code, address)
            with self._lock:
                self._active[address] = (time.monotonic(), hit[1])
            return hit[1]
        with self._lock:
            self._active[address] = (now, active)
        return active

    # -- queries and status -------------------------------------------------------------------------
    def get(self, party_id: str) -> Party:
        with self.store.session() as session:
            party = session.get(Party, party_id)
        if party is None:
            raise NotFound(f"no party {party_id}", code="party_not_found")
        return party

    def list(self, kind: PartyKind | None = None) -> list[Party]:
        with self.store.session() as session:
            query = select(Party).order_by(Party.created_at)
            if kind is not None:
                query = query.where(Party.kind == kind)
            return list(session.scalars(query))

    def set_suspended(self, actor: Party, party_id: str, suspended: bool, reason: str = "") -> Party:
        if actor.kind is not PartyKind.REGISTRAR:
            raise Forbidden("only the registrar may suspend or reinstate parties", code="forbidden_role")
        party = self.get(party_id)
        if suspended:
            fn = self.registry.functions.suspend(party.address, keccak(text=reason))
        else:
            fn = self.registry.functions.reinstate(party.address)
        self.chain.transact(fn, self.signer(actor))
        with self.store.session() as session:
            row = session.get(Party, party_id)
            assert row is not None
            row.status = PartyStatus.SUSPENDED if suspended else PartyStatus.ACTIVE
            party = row
        with self._lock:
            self._active.pop(party.address, None)
        return party
