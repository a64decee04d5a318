"""Wiring: open the store, keys, chain and contracts for a data directory; the one entry point
that ``api.create_app``, the CLI and the tests use to get a running ledger.

Start-up order matters: the store (migrations) and the key vault first, then the platform keys, the
chain (the embedded chain's genesis funds the platform's funder key), the bootstrap registrar, and
finally the contracts (deployed once per chain id, reused afterwards).
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from web3 import Web3
from web3.contract.contract import Contract
from web3.types import Wei

from ledger.audit.alerts import AlertService, Thresholds
from ledger.audit.integrity import IntegrityAudit
from ledger.audit.lineage import LineageService
from ledger.audit.monitor import AlertMonitor, MonitorPolicy
from ledger.audit.raised import RaisedAlerts
from ledger.audit.report import ReportService
from ledger.audit.rollup import RollupPolicy, StatRollupWorker
from ledger.audit.stats import StatisticsService
from ledger.audit.trail import TrailService
from ledger.chain.client import Chain
from ledger.chain.contracts import ensure_deployed
from ledger.errors import ChainError
from ledger.gateway.grants import GrantChecker, grant_evidence
from ledger.gateway.service import GatewayService
from ledger.gateway.subjects import SubjectService
from ledger.identity.parties import PartyService, new_token, party_id_bytes32, uscc_hash
from ledger.identity.uscc import make_uscc
from ledger.identity.vault import KeyVault
from ledger.log.anchoring import Anchorer, AnchorPolicy
from ledger.log.note import NoteSigner
from ledger.log.service import LogService
from ledger.log.store import LogStore
from ledger.log.subject_index import IndexPolicy, SubjectIndexer
from ledger.opening.applications import ApplicationService
from ledger.opening.base import Opening
from ledger.opening.checker import ContractChecker, contract_evidence
from ledger.opening.contracts import NegativeListService, OpenContractService
from ledger.opening.declarations import DeclarationService
from ledger.settings import Settings
from ledger.sharing.catalog import CatalogService
from ledger.sharing.consent import Consent
from ledger.sharing.disputes import DisputeService
from ledger.sharing.requests import ShareService
from ledger.store.db import Store
from ledger.store.models import Party, PlatformKey
from ledger.types import PartyKind

log = logging.getLogger("sharetrail")

REGISTRAR_NAME = "贵阳市大数据发展管理委员会"
GAS_TOPUP = 10**20  # 100 ETH on dev chains
DEV_FUNDING = 10**21  # 1000 ETH of a dev node's prefunded 10,000


@dataclass
class Bootstrap:
    """What the first start created and must tell the operator once."""

    registrar_id: str
    registrar_token: str | None  # None when it came from SHARETRAIL_BOOTSTRAP_TOKEN or already existed


class Ledger:
    """The running domain core for one data directory."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        vault: KeyVault,
        chain: Chain,
        funder: LocalAccount,
        log_key: LocalAccount,
        contracts: dict[str, Contract],
        parties: PartyService,
        log: LogService,
        catalog: CatalogService,
        sharing: ShareService,
        gateway: GatewayService,
        subjects: SubjectService,
        opening: Opening,
        bootstrap: Bootstrap,
    ) -> None:
        self.settings = settings
        self.store = store
        self.vault = vault
        self.chain = chain
        self.funder = funder
        self.log_key = log_key
        self.contracts = contracts
        self.parties = parties
        self.log = log
        self.catalog = catalog
        self.sharing = sharing
        self.disputes = DisputeService(sharing)
        self.gateway = gateway
        self.subjects = subjects
        self.open_contracts = OpenContractService(opening)
        self.applications = ApplicationService(opening)
        self.negative_list = NegativeListService(opening)
        self.declarations = DeclarationService(opening, self.open_contracts)
        self.trail = TrailService(store=store, hash_subject=subjects.hash_of)
        thresholds = Thresholds(
            denied_burst=settings.alert_denied_burst,
            burst_minutes=settings.alert_burst_minutes,
            spike_min=settings.alert_spike_min,
            bulk_records=settings.alert_bulk_records,
            baseline_days=settings.alert_baseline_days,
        )
        self.alerts = AlertService(store=store, thresholds=thresholds)
        self.alert_monitor = AlertMonitor(
            store=store,
            thresholds=thresholds,
            policy=MonitorPolicy(
                interval=settings.alert_interval, deadline_interval=settings.alert_deadline_interval
            ),
        )
        self.alert_monitor.elect(store.engine, settings.data_dir)
        self.raised_alerts = RaisedAlerts(store=store)
        self.integrity = IntegrityAudit(store=store, chain=chain, anchor=contracts["Anchor"], log=log.log)
        self.stat_rollup = StatRollupWorker(
            store=store,
            policy=RollupPolicy(interval=settings.stat_rollup_interval, batch=settings.stat_rollup_batch),
        )
        self.stat_rollup.elect(store.engine, settings.data_dir)
        self.subject_indexer = SubjectIndexer(
            store=store, policy=IndexPolicy(interval=settings.subject_index_interval)
        )
        self.subject_indexer.elect(store.engine, settings.data_dir)
        self.statistics = StatisticsService(store=store)
        self.lineage = LineageService(store=store)
        self.reports = ReportService(
            store=store, statistics=self.statistics, alerts=self.alerts, integrity=self.integrity
        )
        self.bootstrap = bootstrap

    @classmethod
    def open(cls, settings: Settings) -> Ledger:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store(settings.database_url, sqlite_cache_mib=settings.sqlite_cache_mib)
        try:
            store.migrate()
            vault = KeyVault.for_data_dir(settings.data_dir)
            funder = _platform_key(store, vault, "funder")
            log_key = _platform_key(store, vault, "log")
            if settings.is_embedded:
                chain = Chain.embedded(settings.data_dir / "chain.sqlite", funder.address)
            else:
                chain = Chain.http(settings.chain, timeout=settings.chain_timeout)
                _fund_from_dev_node(chain, funder)
        except BaseException:
            store.close()
            raise
        try:
            return cls._finish_open(settings, store, vault, chain, funder, log_key)
        except BaseException:
            chain.close()
            store.close()
            raise

    @classmethod
    def _finish_open(
        cls,
        settings: Settings,
        store: Store,
        vault: KeyVault,
        chain: Chain,
        funder: LocalAccount,
        log_key: LocalAccount,
    ) -> Ledger:
        with store.session() as session:
            registrar = session.scalar(
                select(Party).where(Party.kind == PartyKind.REGISTRAR).order_by(Party.created_at)
            )
        bootstrap_token: str | None = None
        placeholder = PartyService(store=store, vault=vault, chain=chain, registry=None)  # type: ignore[arg-type]
        if registrar is None:
            token = settings.bootstrap_token or new_token()
            bootstrap_token = None if settings.bootstrap_token else token
            registrar = placeholder.bootstrap_registrar(
                name=REGISTRAR_NAME, uscc=make_uscc(division="520100", seq=1), token=token
            )
        registrar_account = placeholder.signer(registrar)
        _top_up(chain, funder, registrar_account.address)
        _top_up(chain, funder, log_key.address)
        contracts = {
            "PartyRegistry": ensure_deployed(
                chain,
                store,
                funder,
                "PartyRegistry",
                [
                    funder.address,
                    registrar.address,
                    party_id_bytes32(registrar.id),
                    uscc_hash(registrar.uscc),
                ],
            ),
            "Anchor": ensure_deployed(chain, store, funder, "Anchor", [funder.address, log_key.address]),
        }
        contracts["ShareLedger"] = ensure_deployed(
            chain, store, funder, "ShareLedger", [contracts["PartyRegistry"].address, funder.address]
        )
        contracts["OpenContracts"] = ensure_deployed(
            chain,
            store,
            funder,
            "OpenContracts",
            [contracts["PartyRegistry"].address, contracts["ShareLedger"].address],
        )
        parties = PartyService(
            store=store,
            vault=vault,
            chain=chain,
            registry=contracts["PartyRegistry"],
            cache_seconds=settings.suspension_cache_seconds,
        )
        parties.reconcile()
        signer = _note_signer(store, vault, settings.origin)
        log_store = LogStore(store)
        anchorer = Anchorer(
            log_store=log_store,
            chain=chain,
            contract=contracts["Anchor"],
            operator=log_key,
            signer=signer,
            origin=settings.origin,
            policy=AnchorPolicy(interval=settings.anchor_interval, batch=settings.anchor_batch),
        )
        anchorer.elect(store.engine, settings.data_dir)
        log_service = LogService(
            log_store=log_store, anchorer=anchorer, signer=signer, onchain_levels=settings.onchain_level_set
        )
        catalog = CatalogService(
            store=store, chain=chain, contract=contracts["ShareLedger"], parties=parties, relayer=funder
        )
        sharing = ShareService(
            store=store,
            chain=chain,
            contract=contracts["ShareLedger"],
            parties=parties,
            catalog=catalog,
            log=log_store,
            relayer=funder,
        )
        share_evidence = grant_evidence(
            store, chain_id=chain.chain_id, contract=contracts["ShareLedger"].address
        )
        open_evidence = contract_evidence(
            store, chain_id=chain.chain_id, contract=contracts["OpenContracts"].address
        )

        def evidence(entry: dict[str, Any]) -> dict[str, Any] | None:
            return share_evidence(entry) or open_evidence(entry)

        log_service.evidence = evidence
        opening = Opening(
            store=store,
            chain=chain,
            contract=contracts["OpenContracts"],
            parties=parties,
            catalog=catalog,
            log=log_store,
            consent=Consent(
                chain=chain, contract=contracts["OpenContracts"], parties=parties, relayer=funder
            ),
        )
        subject_key = platform_secret(store, vault, "subject")
        gateway = GatewayService(
            store=store,
            catalog=catalog,
            log=log_service,
            grants=GrantChecker(
                store=store,
                chain=chain,
                contract=contracts["ShareLedger"],
                cache_seconds=settings.grant_cache_seconds,
            ),
            contracts=ContractChecker(
                store=store,
                chain=chain,
                contract=contracts["OpenContracts"],
                cache_seconds=settings.grant_cache_seconds,
            ),
            vault=vault,
            subject_key=subject_key,
            pseudonym_key=platform_secret(store, vault, "pseudonym"),
            source_roots=settings.source_root_paths,
            ledger_db_url=settings.database_url,
            k=settings.k_anonymity,
            max_stream_rows=settings.max_stream_rows,
        )
        subjects = SubjectService(
            store=store, log=log_service, subject_key=subject_key, token_days=settings.subject_token_days
        )
        return cls(
            settings=settings,
            store=store,
            vault=vault,
            chain=chain,
            funder=funder,
            log_key=log_key,
            contracts=contracts,
            parties=parties,
            log=log_service,
            catalog=catalog,
            sharing=sharing,
            gateway=gateway,
            subjects=subjects,
            opening=opening,
            bootstrap=Bootstrap(registrar_id=registrar.id, registrar_token=bootstrap_token),
        )

    @property
    def anchorer(self) -> Anchorer:
        return self.log.anchorer

    def close(self) -> None:
        self.subject_indexer.stop()
        self.stat_rollup.stop()
        self.alert_monitor.stop()
        self.log.anchorer.stop()
        self.gateway.close()
        self.chain.close()
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _platform_key(store: Store, vault: KeyVault, name: str) -> LocalAccount:
    with store.session() as session:
        row = session.get(PlatformKey, name)
        if row is None:
            account, sealed = vault.new_account(f"platform:{name}")
            session.add(PlatformKey(name=name, address=account.address, ciphertext=sealed))
            return account
        return vault.account(row.ciphertext, f"platform:{name}")


def platform_secret(store: Store, vault: KeyVault, name: str) -> bytes:
    """A 32-byte platform secret (HMAC keys for subject hashes and pseudonyms), sealed at rest."""
    label = f"platform:{name}"
    with store.session() as session:
        row = session.get(PlatformKey, name)
        if row is None:
            secret = os.urandom(32)
            session.add(PlatformKey(name=name, address="hmac", ciphertext=vault.seal(secret, label)))
            return secret
        return vault.open(row.ciphertext, label)


def _note_signer(store: Store, vault: KeyVault, origin: str) -> NoteSigner:
    """The operator's Ed25519 key for C2SP checkpoint notes, sealed at rest like every key."""
    label = "platform:note"
    with store.session() as session:
        row = session.get(PlatformKey, "note")
        if row is None:
            signer = NoteSigner.generate(origin)
            session.add(
                PlatformKey(
                    name="note", address="ed25519", ciphertext=vault.seal(signer.private_bytes(), label)
                )
            )
            return signer
        return NoteSigner.from_private_bytes(origin, vault.open(row.ciphertext, label))


def _fund_from_dev_node(chain: Chain, funder: LocalAccount) -> None:
    """On a dev node (Hardhat, Anvil, Ganache) fund the platform key from an unlocked account."""
    if chain.balance(funder.address) > 0 or chain._rpc(lambda: chain.w3.eth.gas_price) == 0:
        return
    accounts = chain._rpc(lambda: chain.w3.eth.accounts)
    if not accounts:
        raise ChainError(
            f"the platform funding key {funder.address} has no balance on chain {chain.chain_id}; fund it "
            "(or run a zero-gas-price consortium network)",
            code="funder_unfunded",
        )
    tx_hash = chain._rpc(
        lambda: chain.w3.eth.send_transaction(
            {"from": accounts[0], "to": funder.address, "value": Wei(DEV_FUNDING)}
        )
    )
    chain.wait(tx_hash)
    log.info("funded platform key %s from dev account %s", funder.address, accounts[0])


def _top_up(chain: Chain, funder: LocalAccount, address: str) -> None:
    if chain.kind == "http" and chain._rpc(lambda: chain.w3.eth.gas_price) == 0:
        return
    if chain.balance(address) < GAS_TOPUP // 10:
        chain.send_value(funder, Web3.to_checksum_address(address), GAS_TOPUP)


@contextmanager
def frozen_heap() -> Iterator[None]:
    """While serving: the objects alive after start-up (the contracts' ABIs, the embedded EVM,
    SQLAlchemy's metadata, the migrations — ~200,000 of them) leave the garbage collector's
    generations (``gc.freeze``), so that a full collection walks only what requests create; on the
    way out they go back (``gc.unfreeze``), and whatever of them became garbage can be collected.
    No collection first: the start-up garbage it would free is small, and a full collection of a
    large process (a test run) takes ~0.2 s. Measured on the gateway bench (docs/benchmarks.md):
    an aggregate access over 100,000 rows 436–506 ms without, 195 ms with."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
