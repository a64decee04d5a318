"""The OpenContracts contract on the real embedded chain (eth-tester on py-evm, persisted on disk).

Issue 6: contract-mode opening (契约式开放) is effective only once the operator's proposal and the
signatures of the enterprise and of every provider of the named resources are on chain; on-application
opening (依申请开放) opens a resource once its provider and an operator approved; the registrar's negative
list (负面清单) keeps listed resources closed. ``checkAuthorized`` answers for any past access time, which
is what a proof bundle verifier asks with nothing but a chain endpoint.

As in test_share_contract.py: PartyRegistry and ShareLedger are deployed on a fresh embedded chain, every
message is EIP-712 typed data signed on the client side by ``eth_account`` alone (the types below are this
file's own copy, no project signing code), a separate relayer account sends every transaction, and every
refusal is checked by its exact code. Times are read from the mined blocks, never from the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any, NamedTuple

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import Contract, ContractFunction
from web3.logs import DISCARD

from ledger.chain.client import Chain, Receipt
from ledger.chain.contracts import load_artifact
from ledger.errors import ContractRevert

OPEN_ABI: list[dict[str, Any]] = load_artifact("OpenContracts")["abi"]
OPEN_BYTECODE: str = load_artifact("OpenContracts")["bytecode"]
SHARE_ABI: list[dict[str, Any]] = load_artifact("ShareLedger")["abi"]
SHARE_BYTECODE: str = load_artifact("ShareLedger")["bytecode"]
REGISTRY_ABI: list[dict[str, Any]] = load_artifact("PartyRegistry")["abi"]
REGISTRY_BYTECODE: str = load_artifact("PartyRegistry")["bytecode"]
ZERO = bytes(32)
ZERO_ADDRESS = "0x" + "00" * 20
DAY = 86_400
YEAR = 365 * DAY

# The EIP-712 types, field by field, exactly as OpenContracts declares them.
TYPES: dict[str, list[tuple[str, str]]] = {
    "OpenContract": [
        ("contractId", "bytes32"),
        ("operator", "address"),
        ("enterprise", "address"),
        ("resources", "bytes32[]"),
        ("purposes", "bytes32[]"),
        ("scopeHash", "bytes32"),
        ("validFrom", "uint64"),
        ("validUntil", "uint64"),
        ("obligations", "uint16"),
        ("termsHash", "bytes32"),
        ("nonce", "uint256"),
    ],
    "Acceptance": [
        ("contractId", "bytes32"),
        ("contractHash", "bytes32"),
        ("signer", "address"),
        ("nonce", "uint256"),
    ],
    "StatusChange": [
        ("contractId", "bytes32"),
        ("action", "uint8"),
        ("reasonHash", "bytes32"),
        ("nonce", "uint256"),
    ],
    "Application": [
        ("applicationId", "bytes32"),
        ("enterprise", "address"),
        ("resourceId", "bytes32"),
        ("purpose", "bytes32"),
        ("scopeHash", "bytes32"),
        ("qualificationsHash", "bytes32"),
        ("validFrom", "uint64"),
        ("validUntil", "uint64"),
        ("nonce", "uint256"),
    ],
    "Review": [
        ("applicationId", "bytes32"),
        ("approve", "bool"),
        ("reasonHash", "bytes32"),
        ("nonce", "uint256"),
    ],
    "Listing": [
        ("resourceId", "bytes32"),
        ("listed", "bool"),
        ("reasonHash", "bytes32"),
        ("nonce", "uint256"),
    ],
}
# Which contract function carries which signed struct, its typehash constant and its struct-hash view.
FUNCTIONS = {
    "OpenContract": ("propose", "OPEN_CONTRACT_TYPEHASH", "proposalStructHash"),
    "Acceptance": ("sign", "ACCEPTANCE_TYPEHASH", "acceptanceStructHash"),
    "StatusChange": ("changeStatus", "STATUS_CHANGE_TYPEHASH", "statusChangeStructHash"),
    "Application": ("submitApplication", "APPLICATION_TYPEHASH", "applicationStructHash"),
    "Review": ("review", "REVIEW_TYPEHASH", "reviewStructHash"),
    "Listing": ("setListing", "LISTING_TYPEHASH", "listingStructHash"),
}
# ShareLedger's catalog entry, to publish the resources OpenContracts reads.
RESOURCE_VERSION = [
    ("resourceId", "bytes32"),
    ("provider", "address"),
    ("level", "uint8"),
    ("shareType", "uint8"),
    ("openType", "uint8"),
    ("metadataHash", "bytes32"),
    ("version", "uint32"),
    ("nonce", "uint256"),
]
# Gas ceilings, ~25% above the figures measured when written (see test_gas_stays_bounded).
GAS_CEILING = {
    "propose": 760_000,
    "sign": 100_000,
    "sign_effective": 165_000,
    "change_status": 95_000,
    "submit_application": 305_000,
    "review": 65_000,
    "review_approved": 600_000,
    "set_listing": 92_000,
}


class Kind(IntEnum):  # PartyRegistry.Kind
    REGISTRAR = 1
    DEPARTMENT = 2
    OPERATOR = 3
    ENTERPRISE = 4


class OpenType(IntEnum):  # ShareLedger openType
    OPEN = 0
    ON_APPLICATION = 1
    CONTRACT = 2
    NONE = 3


class Status(IntEnum):  # OpenContracts.Status
    NONE = 0
    PROPOSED = 1
    EFFECTIVE = 2
    SUSPENDED = 3
    TERMINATED = 4


class AppStatus(IntEnum):  # OpenContracts.ApplicationStatus
    NONE = 0
    PENDING = 1
    APPROVED = 2
    REJECTED = 3


class Action(IntEnum):  # OpenContracts.ACTION_*
    SUSPEND = 1
    RESUME = 2
    TERMINATE = 3


KIND_CONTRACT = 0
KIND_APPLICATION = 1
OBLIGATIONS_ALL = 15
OBLIGATIONS_APPLICATION = 7


class Record(NamedTuple):  # OpenContracts.Record
    kind: int
    status: int
    required: int
    signed_count: int
    obligations: int
    operator: str
    enterprise: str
    valid_from: int
    valid_until: int
    proposed_at: int
    effective_at: int
    terminated_at: int
    contract_hash: bytes
    scope_hash: bytes
    terms_hash: bytes


class AppRecord(NamedTuple):  # OpenContracts.ApplicationRecord
    enterprise: str
    provider: str
    operator: str
    status: int
    provider_approved: bool
    submitted_at: int
    valid_from: int
    valid_until: int
    resource_id: bytes
    purpose: bytes
    scope_hash: bytes
    application_hash: bytes


def h(label: str) -> bytes:
    """A 32-byte id or content hash named by ``label``."""
    return bytes(Web3.keccak(text=label))


# The module's catalog (published once in the ``catalog`` fixture): three contract-open resources, two
# from PROVIDER and one from PROVIDER2, and one resource of every other open type, all from PROVIDER.
RES_A = h("resource A (contract, provider)")
RES_B = h("resource B (contract, provider2)")
RES_C = h("resource C (contract, provider)")
RES_D = h("resource D (on application, provider)")
RES_E = h("resource E (open, provider)")
RES_F = h("resource F (none, provider)")
PURPOSES = [h("purpose: credit scoring"), h("purpose: risk model")]
APP_PURPOSE = h("purpose: site selection")


def type_string(kind: str) -> str:
    return f"{kind}({','.join(f'{t} {n}' for n, t in TYPES[kind])})"


def _types(kind: str) -> dict[str, list[dict[str, str]]]:
    return {kind: [{"name": n, "type": t} for n, t in TYPES[kind]]}


def block_time(chain: Chain, receipt: Receipt) -> int:
    return int(chain.w3.eth.get_block(receipt.block_number)["timestamp"])


def args_of(error: ContractRevert) -> list[Any]:
    """The custom error's arguments, addresses checksummed as everywhere else."""
    return [
        Web3.to_checksum_address(a) if isinstance(a, str) and Web3.is_address(a) else a
        for a in error.details["args"]
    ]


def refused(chain: Chain, fn: Any, sender: LocalAccount, code: str) -> ContractRevert:
    """Send ``fn`` and require the exact custom error; return it for its arguments."""
    with pytest.raises(ContractRevert) as info:
        chain.transact(fn, sender)
    assert info.value.code == code, info.value.message
    return info.value


@dataclass(frozen=True)
class Actors:
    admin: LocalAccount  # funded at genesis; deploys every contract, holds the registry's admin role
    relayer: LocalAccount  # sends every OpenContracts transaction, signs nothing
    registrar: LocalAccount  # the registry's first registrar; registers every party
    registrar2: LocalAccount
    operator: LocalAccount  # the platform operator (Kind.Operator)
    operator2: LocalAccount
    enterprise: LocalAccount
    enterprise2: LocalAccount
    provider: LocalAccount  # a department: provides resources A, C, D, E, F
    provider2: LocalAccount  # a department: provides resource B
    other_dept: LocalAccount  # a department providing nothing used here
    stranger: LocalAccount  # registered nowhere

    def all(self) -> list[LocalAccount]:
        return [getattr(self, f.name) for f in fields(self)]


@dataclass(frozen=True)
class Signed:
    kind: str
    message: dict[str, Any]
    signature: bytes

    def args(self) -> tuple[tuple[Any, ...], bytes]:
        return tuple(self.message[name] for name, _ in TYPES[self.kind]), self.signature


@dataclass
class Catalog:
    """The module's ShareLedger, used only as the catalog of resources (provider and open type)."""

    chain: Chain
    actors: Actors
    contract: Contract

    def publish(
        self, resource_id: bytes, provider: LocalAccount, open_type: int, *, version: int = 1
    ) -> None:
        message = {
            "resourceId": resource_id,
            "provider": provider.address,
            "level": 2,
            "shareType": 1,
            "openType": open_type,
            "metadataHash": h(f"{resource_id.hex()} metadata v{version}"),
            "version": version,
            "nonce": int(self.chain.call(self.contract.functions.nonces(provider.address))),
        }
        signed = Account.sign_typed_data(
            provider.key,
            domain_data={
                "name": "sharetrail",
                "version": "1",
                "chainId": self.chain.chain_id,
                "verifyingContract": self.contract.address,
            },
            message_types={"ResourceVersion": [{"name": n, "type": t} for n, t in RESOURCE_VERSION]},
            message_data=message,
        )
        struct = tuple(message[n] for n, _ in RESOURCE_VERSION)
        fn = self.contract.functions.registerResource(struct, bytes(signed.signature))
        self.chain.transact(fn, self.actors.relayer)


@dataclass
class Open:
    """One freshly deployed OpenContracts over the module's registry and catalog, with signing helpers."""

    chain: Chain
    actors: Actors
    registry: Contract
    catalog: Catalog
    contract: Contract
    accounts: dict[str, LocalAccount] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.accounts.update({a.address: a for a in self.actors.all()})

    def domain(self, *, chain_id: int | None = None, verifying: str | None = None) -> dict[str, Any]:
        return {
            "name": "sharetrail",
            "version": "1",
            "chainId": self.chain.chain_id if chain_id is None else chain_id,
            "verifyingContract": self.contract.address if verifying is None else verifying,
        }

    def nonce(self, account: LocalAccount) -> int:
        return int(self.chain.call(self.contract.functions.nonces(account.address)))

    def now(self) -> int:
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])

    def time(self, receipt: Receipt) -> int:
        return block_time(self.chain, receipt)

    def sign(
        self,
        kind: str,
        signer: LocalAccount,
        fields: dict[str, Any],
        *,
        key: LocalAccount | None = None,
        nonce: int | None = None,
        chain_id: int | None = None,
        verifying: str | None = None,
    ) -> Signed:
        """Sign ``fields`` as ``signer`` with its current nonce; ``key`` signs instead (a forgery)."""
        message = {**fields, "nonce": self.nonce(signer) if nonce is None else nonce}
        signed = Account.sign_typed_data(
            (key or signer).key,
            domain_data=self.domain(chain_id=chain_id, verifying=verifying),
            message_types=_types(kind),
            message_data=message,
        )
        return Signed(kind, message, bytes(signed.signature))

    def struct_hash(self, signed: Signed) -> bytes:
        """hashStruct of a signed message, computed by eth_account alone (what parties endorse)."""
        encoded = encode_typed_data(
            domain_data=self.domain(), message_types=_types(signed.kind), message_data=signed.message
        )
        return bytes(encoded.body)

    def fn(self, signed: Signed) -> ContractFunction:
        struct, signature = signed.args()
        function: ContractFunction = getattr(self.contract.functions, FUNCTIONS[signed.kind][0])(
            struct, signature
        )
        return function

    def send(self, signed: Signed) -> Receipt:
        return self.chain.transact(self.fn(signed), self.actors.relayer)

    def refused(self, signed: Signed, code: str) -> ContractRevert:
        return refused(self.chain, self.fn(signed), self.actors.relayer, code)

    def call(self, name: str, *args: Any) -> Any:
        return self.chain.call(getattr(self.contract.functions, name)(*args))

    def events(self, receipt: Receipt, name: str) -> list[dict[str, Any]]:
        logs = getattr(self.contract.events, name)().process_receipt(receipt.raw, errors=DISCARD)
        return [
            {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in log["args"].items()}
            for log in logs
        ]

    def record(self, contract_id: bytes) -> Record:
        return Record(*self.call("contractOf", contract_id))

    def application_of(self, application_id: bytes) -> AppRecord:
        return AppRecord(*self.call("applicationOf", application_id))

    def status_at(self, contract_id: bytes, at: int) -> Status:
        return Status(self.call("statusAt", contract_id, at))

    def signers(self, contract_id: bytes) -> list[str]:
        return list(self.call("signersOf", contract_id))

    # -- checkAuthorized ----------------------------------------------------------------------------
    def authorized(self, contract_id: bytes, accessor: str, resource: bytes, purpose: bytes, at: int) -> None:
        assert self.call("checkAuthorized", contract_id, accessor, resource, purpose, at) == []

    def check(
        self, contract_id: bytes, accessor: str, resource: bytes, purpose: bytes, at: int, code: str
    ) -> list[Any]:
        with pytest.raises(ContractRevert) as info:
            self.call("checkAuthorized", contract_id, accessor, resource, purpose, at)
        assert info.value.code == code, info.value.message
        return args_of(info.value)

    # -- the messages, with defaults ------------------------------------------------------------------
    def proposal(
        self,
        label: str,
        *,
        operator: LocalAccount | None = None,
        enterprise: str | None = None,
        resources: Sequence[bytes] = (RES_A, RES_B),
        purposes: Sequence[bytes] = tuple(PURPOSES),
        valid_from: int | None = None,
        valid_until: int | None = None,
        obligations: int = OBLIGATIONS_ALL,
    ) -> dict[str, Any]:
        now = self.now()
        return {
            "contractId": h(label),
            "operator": (operator or self.actors.operator).address,
            "enterprise": self.actors.enterprise.address if enterprise is None else enterprise,
            "resources": list(resources),
            "purposes": list(purposes),
            "scopeHash": h(f"{label} scope"),
            "validFrom": now - DAY if valid_from is None else valid_from,
            "validUntil": now + YEAR if valid_until is None else valid_until,
            "obligations": obligations,
            "termsHash": h(f"{label} terms"),
        }

    def propose(self, label: str, **kwargs: Any) -> tuple[bytes, Signed, Receipt]:
        operator = kwargs.get("operator") or self.actors.operator
        signed = self.sign("OpenContract", operator, self.proposal(label, **kwargs))
        return h(label), signed, self.send(signed)

    def acceptance(
        self,
        contract_id: bytes,
        signer: LocalAccount,
        *,
        contract_hash: bytes | None = None,
        key: LocalAccount | None = None,
        nonce: int | None = None,
    ) -> Signed:
        if contract_hash is None:
            contract_hash = bytes(self.record(contract_id).contract_hash)
        message = {"contractId": contract_id, "contractHash": contract_hash, "signer": signer.address}
        return self.sign("Acceptance", signer, message, key=key, nonce=nonce)

    def effective(self, label: str, **kwargs: Any) -> tuple[bytes, int]:
        """Propose and have every party sign; returns the id and the time the contract took effect."""
        contract_id, _, receipt = self.propose(label, **kwargs)
        for address in self.signers(contract_id):
            receipt = self.send(self.acceptance(contract_id, self.accounts[address]))
        assert self.record(contract_id).status == Status.EFFECTIVE
        return contract_id, self.time(receipt)

    def change(
        self, contract_id: bytes, action: int, signer: LocalAccount, reason: str = "reason 说明理由"
    ) -> Signed:
        message = {"contractId": contract_id, "action": action, "reasonHash": h(reason)}
        return self.sign("StatusChange", signer, message)

    def application(
        self,
        label: str,
        *,
        enterprise: LocalAccount | None = None,
        resource: bytes = RES_D,
        purpose: bytes = APP_PURPOSE,
        valid_from: int | None = None,
        valid_until: int | None = None,
    ) -> dict[str, Any]:
        now = self.now()
        return {
            "applicationId": h(label),
            "enterprise": (enterprise or self.actors.enterprise).address,
            "resourceId": resource,
            "purpose": purpose,
            "scopeHash": h(f"{label} scope"),
            "qualificationsHash": h(f"{label} qualifications"),
            "validFrom": now - DAY if valid_from is None else valid_from,
            "validUntil": now + YEAR if valid_until is None else valid_until,
        }

    def submit(self, label: str, **kwargs: Any) -> tuple[bytes, Signed, Receipt]:
        enterprise = kwargs.get("enterprise") or self.actors.enterprise
        signed = self.sign("Application", enterprise, self.application(label, **kwargs))
        return h(label), signed, self.send(signed)

    def review(
        self, application_id: bytes, reviewer: LocalAccount, *, approve: bool = True, reason: str = "ok"
    ) -> Signed:
        message = {"applicationId": application_id, "approve": approve, "reasonHash": h(reason)}
        return self.sign("Review", reviewer, message)

    def listing(
        self, resource_id: bytes, listed: bool, registrar: LocalAccount, reason: str = "负面清单"
    ) -> Signed:
        message = {"resourceId": resource_id, "listed": listed, "reasonHash": h(reason)}
        return self.sign("Listing", registrar, message)

    # -- the registry ------------------------------------------------------------------------------------
    def register(self, kind: Kind, label: str) -> LocalAccount:
        """A fresh party, for tests that suspend one (the registry is shared by the module)."""
        account: LocalAccount = Account.create()
        fn = self.registry.functions.register(account.address, kind, h(f"party {label}"), h(label))
        self.chain.transact(fn, self.actors.registrar)
        self.accounts[account.address] = account
        return account

    def suspend(self, account: LocalAccount) -> None:
        fn = self.registry.functions.suspend(account.address, h("audit"))
        self.chain.transact(fn, self.actors.registrar)

    def reinstate(self, account: LocalAccount) -> None:
        self.chain.transact(self.registry.functions.reinstate(account.address), self.actors.registrar)


def _deploy(
    chain: Chain, deployer: LocalAccount, abi: list[dict[str, Any]], bytecode: str, *args: Any
) -> Contract:
    factory = chain.w3.eth.contract(abi=abi, bytecode=bytecode)
    receipt = chain.transact(factory.constructor(*args), deployer)
    address = receipt.raw["contractAddress"]
    assert address is not None
    return chain.contract(str(address), abi)


@pytest.fixture(scope="module")
def actors() -> Actors:
    return Actors(*(Account.create() for _ in fields(Actors)))


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, actors: Actors) -> Iterator[Chain]:
    opened = Chain.embedded(tmp_path_factory.mktemp("open") / "chain.sqlite", actors.admin.address)
    opened.register_errors(OPEN_ABI)
    opened.register_errors(SHARE_ABI)
    opened.register_errors(REGISTRY_ABI)
    for account in (actors.relayer, actors.registrar):
        opened.send_value(actors.admin, account.address, 10**18)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def registry(chain: Chain, actors: Actors) -> Contract:
    """One PartyRegistry for the module; the registrar registers every party through it."""
    contract = _deploy(
        chain,
        actors.admin,
        REGISTRY_ABI,
        REGISTRY_BYTECODE,
        actors.admin.address,
        actors.registrar.address,
        h("party registrar"),
        h("uscc registrar"),
    )
    parties = [
        (actors.registrar2, Kind.REGISTRAR),
        (actors.operator, Kind.OPERATOR),
        (actors.operator2, Kind.OPERATOR),
        (actors.enterprise, Kind.ENTERPRISE),
        (actors.enterprise2, Kind.ENTERPRISE),
        (actors.provider, Kind.DEPARTMENT),
        (actors.provider2, Kind.DEPARTMENT),
        (actors.other_dept, Kind.DEPARTMENT),
    ]
    for account, kind in parties:
        fn = contract.functions.register(
            account.address, kind, h(f"party {account.address}"), h(account.address)
        )
        chain.transact(fn, actors.registrar)
    return contract


@pytest.fixture(scope="module")
def catalog(chain: Chain, actors: Actors, registry: Contract) -> Catalog:
    """One ShareLedger for the module, holding the resources RES_A … RES_F."""
    contract = _deploy(chain, actors.admin, SHARE_ABI, SHARE_BYTECODE, registry.address, actors.admin.address)
    cat = Catalog(chain, actors, contract)
    for resource_id, provider, open_type in (
        (RES_A, actors.provider, OpenType.CONTRACT),
        (RES_B, actors.provider2, OpenType.CONTRACT),
        (RES_C, actors.provider, OpenType.CONTRACT),
        (RES_D, actors.provider, OpenType.ON_APPLICATION),
        (RES_E, actors.provider, OpenType.OPEN),
        (RES_F, actors.provider, OpenType.NONE),
    ):
        cat.publish(resource_id, provider, open_type)
    return cat


@pytest.fixture
def oc(chain: Chain, actors: Actors, registry: Contract, catalog: Catalog) -> Open:
    """A fresh OpenContracts per test (fresh nonces, contracts and negative list)."""
    contract = _deploy(
        chain, actors.admin, OPEN_ABI, OPEN_BYTECODE, registry.address, catalog.contract.address
    )
    return Open(chain, actors, registry, catalog, contract)


# --------------------------------------------------------------------------------------------
# EIP-712: the contract's constants and struct hashes are what any EIP-712 client computes


def test_typehashes_and_struct_hashes_match_eth_account(oc: Open, actors: Actors) -> None:
    assert oc.call("eip712Domain")[1:5] == ["sharetrail", "1", oc.chain.chain_id, oc.contract.address]
    samples: dict[str, dict[str, Any]] = {
        "OpenContract": oc.proposal("x", resources=[RES_A, RES_B, RES_C], purposes=[h("p")]),
        "Acceptance": {"contractId": h("x"), "contractHash": h("ch"), "signer": actors.enterprise.address},
        "StatusChange": {"contractId": h("x"), "action": Action.TERMINATE, "reasonHash": h("why")},
        "Application": oc.application("a"),
        "Review": {"applicationId": h("a"), "approve": True, "reasonHash": h("why")},
        "Listing": {"resourceId": RES_A, "listed": True, "reasonHash": h("why")},
    }
    assert set(samples) == set(TYPES) == set(FUNCTIONS)
    for kind, message in samples.items():
        _, typehash_name, struct_hash_name = FUNCTIONS[kind]
        assert bytes(oc.call(typehash_name)) == Web3.keccak(text=type_string(kind)), kind
        signed = oc.sign(kind, actors.provider, message, nonce=7)
        encoded = encode_typed_data(
            domain_data=oc.domain(), message_types=_types(kind), message_data=signed.message
        )
        assert bytes(oc.call("DOMAIN_SEPARATOR")) == encoded.header
        assert bytes(oc.call(struct_hash_name, signed.args()[0])) == oc.struct_hash(signed) == encoded.body
        assert Account.recover_message(encoded, signature=signed.signature) == actors.provider.address


@pytest.mark.parametrize("zero", ["registry", "catalog"])
def test_the_constructor_refuses_the_zero_address(
    chain: Chain, actors: Actors, registry: Contract, catalog: Catalog, zero: str
) -> None:
    args = (
        (ZERO_ADDRESS, catalog.contract.address) if zero == "registry" else (registry.address, ZERO_ADDRESS)
    )
    factory = chain.w3.eth.contract(abi=OPEN_ABI, bytecode=OPEN_BYTECODE)
    refused(chain, factory.constructor(*args), actors.admin, "zero_address")


# --------------------------------------------------------------------------------------------
# Contract mode (契约式开放): proposal, signatures, effect


def test_a_contract_takes_effect_once_the_enterprise_and_every_provider_have_signed(
    oc: Open, actors: Actors
) -> None:
    fields_ = oc.proposal("c1")
    signed = oc.sign("OpenContract", actors.operator, fields_)
    receipt = oc.send(signed)
    proposed_at = oc.time(receipt)
    contract_id, contract_hash = h("c1"), oc.struct_hash(signed)
    valid_from, valid_until = fields_["validFrom"], fields_["validUntil"]
    assert oc.events(receipt, "ContractProposed") == [
        {
            "contractId": contract_id,
            "operator": actors.operator.address,
            "enterprise": actors.enterprise.address,
            "contractHash": contract_hash,
            "termsHash": h("c1 terms"),
            "validFrom": valid_from,
            "validUntil": valid_until,
        }
    ]
    assert oc.events(receipt, "ContractTerms") == [
        {
            "contractId": contract_id,
            "resources": [RES_A, RES_B],
            "purposes": PURPOSES,
            "scopeHash": h("c1 scope"),
            "obligations": OBLIGATIONS_ALL,
        }
    ]
    proposed = Record(
        KIND_CONTRACT,
        Status.PROPOSED,
        3,
        0,
        OBLIGATIONS_ALL,
        actors.operator.address,
        actors.enterprise.address,
        valid_from,
        valid_until,
        proposed_at,
        0,
        0,
        contract_hash,
        h("c1 scope"),
        h("c1 terms"),
    )
    assert oc.record(contract_id) == proposed
    parties = [actors.enterprise, actors.provider, actors.provider2]
    assert oc.signers(contract_id) == [p.address for p in parties]
    assert oc.call("resourcesOf", contract_id) == [RES_A, RES_B]
    assert oc.call("purposesOf", contract_id) == PURPOSES
    assert oc.nonce(actors.operator) == 1
    assert oc.status_at(contract_id, proposed_at) == Status.PROPOSED

    for count, party in enumerate(parties, start=1):
        assert not oc.call("hasSigned", contract_id, party.address)
        receipt = oc.send(oc.acceptance(contract_id, party))
        assert oc.events(receipt, "ContractSigned") == [
            {"contractId": contract_id, "signer": party.address, "count": count, "required": 3}
        ]
        assert oc.call("hasSigned", contract_id, party.address)
        if count < 3:
            assert oc.events(receipt, "ContractEffective") == []
            assert oc.record(contract_id) == proposed._replace(signed_count=count)
            at = oc.time(receipt)
            assert oc.status_at(contract_id, at) == Status.PROPOSED
            error = oc.check(
                contract_id, actors.enterprise.address, RES_A, PURPOSES[0], at, "contract_not_effective"
            )
            assert error == [contract_id, at]

    effective_at = oc.time(receipt)
    assert oc.events(receipt, "ContractEffective") == [
        {"contractId": contract_id, "kind": KIND_CONTRACT, "at": effective_at}
    ]
    assert oc.record(contract_id) == proposed._replace(
        status=Status.EFFECTIVE, signed_count=3, effective_at=effective_at
    )
    assert not oc.call("hasSigned", contract_id, actors.operator.address)  # its consent is the proposal
    assert oc.status_at(contract_id, effective_at - 1) == Status.PROPOSED
    assert oc.status_at(contract_id, effective_at) == Status.EFFECTIVE
    assert oc.status_at(contract_id, valid_until + YEAR) == Status.EFFECTIVE
    for resource in (RES_A, RES_B):
        for purpose in PURPOSES:
            for at in (effective_at, oc.now(), valid_until - 1):
                oc.authorized(contract_id, actors.enterprise.address, resource, purpose, at)


def test_a_provider_of_several_resources_signs_once_in_any_order(oc: Open, actors: Actors) -> None:
    contract_id, _, _ = oc.propose("dedupe", resources=[RES_A, RES_B, RES_C])
    assert oc.signers(contract_id) == [
        actors.enterprise.address,
        actors.provider.address,
        actors.provider2.address,
    ]
    assert oc.record(contract_id).required == 3
    for party in (actors.provider2, actors.provider):  # the providers first, the enterprise last
        oc.send(oc.acceptance(contract_id, party))
    assert oc.record(contract_id).status == Status.PROPOSED
    receipt = oc.send(oc.acceptance(contract_id, actors.enterprise))
    assert oc.events(receipt, "ContractSigned")[0]["count"] == 3
    assert len(oc.events(receipt, "ContractEffective")) == 1
    oc.authorized(contract_id, actors.enterprise.address, RES_C, PURPOSES[1], oc.time(receipt))

    # One resource, one provider: two signatures make it effective.
    single, _, _ = oc.propose("single", resources=[RES_C], purposes=[h("p")])
    assert oc.signers(single) == [actors.enterprise.address, actors.provider.address]
    assert oc.record(single).required == 2
    oc.send(oc.acceptance(single, actors.provider))
    receipt = oc.send(oc.acceptance(single, actors.enterprise))
    assert oc.events(receipt, "ContractSigned") == [
        {"contractId": single, "signer": actors.enterprise.address, "count": 2, "required": 2}
    ]
    assert oc.record(single).status == Status.EFFECTIVE


def test_check_authorized_names_why_an_access_is_not_authorized(oc: Open, actors: Actors) -> None:
    contract_id, effective_at = oc.effective("chk")
    record = oc.record(contract_id)
    ent = actors.enterprise.address
    oc.authorized(contract_id, ent, RES_A, PURPOSES[0], effective_at)

    def check(cid: bytes, accessor: str, resource: bytes, purpose: bytes, at: int, code: str) -> list[Any]:
        return oc.check(cid, accessor, resource, purpose, at, code)

    assert check(h("never"), ent, RES_A, PURPOSES[0], effective_at, "unknown_contract") == [h("never")]
    for accessor in (actors.enterprise2.address, actors.provider.address, actors.operator.address):
        error = check(contract_id, accessor, RES_A, PURPOSES[0], effective_at, "not_contract_enterprise")
        assert error == [accessor, ent]
    for resource in (RES_C, RES_D, h("no such resource")):
        error = check(contract_id, ent, resource, PURPOSES[0], effective_at, "resource_not_in_contract")
        assert error == [contract_id, resource]
    error = check(contract_id, ent, RES_A, h("purpose: marketing"), effective_at, "purpose_not_in_contract")
    assert error == [contract_id, h("purpose: marketing")]
    # Inside the window but before it took effect: the status decides first.
    for at in (effective_at - 1, record.valid_from, record.proposed_at, 0):
        assert check(contract_id, ent, RES_A, PURPOSES[0], at, "contract_not_effective") == [contract_id, at]
    oc.authorized(contract_id, ent, RES_B, PURPOSES[1], record.valid_until - 1)
    for at in (record.valid_until, record.valid_until + 1, 2**64 - 1):
        error = check(contract_id, ent, RES_A, PURPOSES[0], at, "contract_expired")
        assert error == [contract_id, record.valid_until]

    # A window that opens after the contract took effect.
    later = oc.now() + 30 * DAY
    future, future_effective_at = oc.effective("future", valid_from=later, valid_until=later + DAY)
    for at in (future_effective_at, later - 1):
        assert check(future, ent, RES_A, PURPOSES[0], at, "contract_not_yet_valid") == [future, later]
    oc.authorized(future, ent, RES_A, PURPOSES[0], later)
    oc.authorized(future, ent, RES_A, PURPOSES[0], later + DAY - 1)
    assert check(future, ent, RES_A, PURPOSES[0], later + DAY, "contract_expired") == [future, later + DAY]


def test_suspension_resumption_and_termination_are_kept_as_history(oc: Open, actors: Actors) -> None:
    """An access is judged by the status at its own time: what a bundle verifier relies on after the fact."""
    contract_id, effective_at = oc.effective("hist")
    ent, until = actors.enterprise.address, oc.record(contract_id).valid_until

    def ok(at: int) -> None:
        oc.authorized(contract_id, ent, RES_A, PURPOSES[0], at)

    def check(at: int, code: str) -> list[Any]:
        return oc.check(contract_id, ent, RES_A, PURPOSES[0], at, code)

    receipt = oc.send(oc.change(contract_id, Action.SUSPEND, actors.operator, "audit pending"))
    suspended_at = oc.time(receipt)
    assert oc.events(receipt, "ContractStatusChanged") == [
        {
            "contractId": contract_id,
            "by": actors.operator.address,
            "status": Status.SUSPENDED,
            "reasonHash": h("audit pending"),
        }
    ]
    assert oc.record(contract_id).status == Status.SUSPENDED
    for at in (suspended_at, oc.now(), until - 1):
        assert check(at, "contract_suspended") == [contract_id, at]
    ok(suspended_at - 1)
    ok(effective_at)

    receipt = oc.send(oc.change(contract_id, Action.RESUME, actors.registrar, "audit cleared"))
    resumed_at = oc.time(receipt)
    assert oc.events(receipt, "ContractStatusChanged") == [
        {
            "contractId": contract_id,
            "by": actors.registrar.address,
            "status": Status.EFFECTIVE,
            "reasonHash": h("audit cleared"),
        }
    ]
    assert oc.record(contract_id).status == Status.EFFECTIVE
    ok(resumed_at)
    ok(suspended_at - 1)
    for at in (suspended_at, resumed_at - 1):
        assert check(at, "contract_suspended") == [contract_id, at]

    receipt = oc.send(oc.change(contract_id, Action.TERMINATE, actors.registrar2, "breach"))
    terminated_at = oc.time(receipt)
    assert oc.events(receipt, "ContractStatusChanged") == [
        {
            "contractId": contract_id,
            "by": actors.registrar2.address,
            "status": Status.TERMINATED,
            "reasonHash": h("breach"),
        }
    ]
    record = oc.record(contract_id)
    assert (record.status, record.effective_at, record.terminated_at) == (
        Status.TERMINATED,
        effective_at,
        terminated_at,
    )
    for at in (terminated_at, oc.now(), until - 1, until):
        assert check(at, "contract_terminated") == [contract_id, terminated_at]
    # An access before the termination was, and stays, authorized; the suspension is still history.
    ok(terminated_at - 1)
    ok(resumed_at)
    ok(effective_at)
    assert check(suspended_at, "contract_suspended") == [contract_id, suspended_at]
    assert check(effective_at - 1, "contract_not_effective") == [contract_id, effective_at - 1]
    assert [
        oc.status_at(contract_id, at)
        for at in (
            effective_at - 1,
            effective_at,
            suspended_at - 1,
            suspended_at,
            resumed_at - 1,
            resumed_at,
            terminated_at - 1,
            terminated_at,
        )
    ] == [
        Status.PROPOSED,
        Status.EFFECTIVE,
        Status.EFFECTIVE,
        Status.SUSPENDED,
        Status.SUSPENDED,
        Status.EFFECTIVE,
        Status.EFFECTIVE,
        Status.TERMINATED,
    ]
    assert oc.status_at(h("never"), terminated_at) == Status.NONE


def test_a_resource_listed_after_the_contract_took_effect_is_refused_from_then_on(
    oc: Open, actors: Actors
) -> None:
    contract_id, effective_at = oc.effective("neg")
    ent = actors.enterprise.address
    receipt = oc.send(oc.listing(RES_A, True, actors.registrar, "personal data"))
    listed_at = oc.time(receipt)
    for at in (listed_at, oc.now()):
        assert oc.check(contract_id, ent, RES_A, PURPOSES[0], at, "negative_listed") == [RES_A]
    oc.authorized(contract_id, ent, RES_A, PURPOSES[0], listed_at - 1)
    oc.authorized(contract_id, ent, RES_A, PURPOSES[1], effective_at)
    oc.authorized(contract_id, ent, RES_B, PURPOSES[0], listed_at)  # the other resource is not listed
    assert oc.status_at(contract_id, listed_at) == Status.EFFECTIVE

    receipt = oc.send(oc.listing(RES_A, False, actors.registrar2, "reviewed"))
    delisted_at = oc.time(receipt)
    oc.authorized(contract_id, ent, RES_A, PURPOSES[0], delisted_at)
    oc.authorized(contract_id, ent, RES_A, PURPOSES[0], listed_at - 1)
    for at in (listed_at, delisted_at - 1):
        assert oc.check(contract_id, ent, RES_A, PURPOSES[0], at, "negative_listed") == [RES_A]


# --------------------------------------------------------------------------------------------
# Proposal refusals


def test_forged_altered_and_replayed_proposals_are_refused(oc: Open, actors: Actors) -> None:
    fields_ = oc.proposal("sig")
    for forger in (actors.relayer, actors.enterprise, actors.operator2, actors.provider):
        signed = oc.sign("OpenContract", actors.operator, fields_, key=forger)
        oc.refused(signed, "invalid_signature")
    other_chain = oc.sign("OpenContract", actors.operator, fields_, chain_id=oc.chain.chain_id + 1)
    oc.refused(other_chain, "invalid_signature")
    twin = _deploy(
        oc.chain,
        actors.admin,
        OPEN_ABI,
        OPEN_BYTECODE,
        oc.registry.address,
        oc.catalog.contract.address,
    )
    oc.refused(oc.sign("OpenContract", actors.operator, fields_, verifying=twin.address), "invalid_signature")
    honest = oc.sign("OpenContract", actors.operator, fields_)
    for bad in (b"", honest.signature[:64], honest.signature + b"\x00", bytes(65)):
        oc.refused(Signed("OpenContract", honest.message, bad), "invalid_signature")
    for change in (
        {"resources": [RES_A]},
        {"resources": [RES_B, RES_A]},
        {"purposes": [*PURPOSES, h("purpose: marketing")]},
        {"enterprise": actors.enterprise2.address},
        {"validUntil": fields_["validUntil"] + YEAR},
        {"obligations": 0},
        {"termsHash": h("other terms")},
    ):
        oc.refused(
            Signed("OpenContract", {**honest.message, **change}, honest.signature), "invalid_signature"
        )
    assert oc.record(h("sig")).status == Status.NONE
    error = oc.refused(oc.sign("OpenContract", actors.operator, fields_, nonce=1), "invalid_account_nonce")
    assert args_of(error) == [actors.operator.address, 0]

    oc.send(honest)
    error = oc.refused(honest, "invalid_account_nonce")
    assert args_of(error) == [actors.operator.address, 1]
    assert oc.nonce(actors.operator) == 1


def test_only_an_operator_proposes_and_only_to_an_enterprise(oc: Open, actors: Actors) -> None:
    for party in (actors.provider, actors.registrar, actors.enterprise, actors.stranger):
        signed = oc.sign("OpenContract", party, oc.proposal("role", operator=party))
        assert args_of(oc.refused(signed, "not_operator")) == [party.address]
    for party in (actors.provider, actors.operator2, actors.registrar, actors.stranger):
        signed = oc.sign("OpenContract", actors.operator, oc.proposal("ent", enterprise=party.address))
        assert args_of(oc.refused(signed, "not_enterprise")) == [party.address]
    signed = oc.sign("OpenContract", actors.operator, oc.proposal("ent", enterprise=ZERO_ADDRESS))
    oc.refused(signed, "zero_address")
    # A suspended operator, or one naming a suspended enterprise, is refused too.
    operator = oc.register(Kind.OPERATOR, "operator to suspend")
    enterprise = oc.register(Kind.ENTERPRISE, "enterprise to suspend")
    oc.suspend(operator)
    oc.suspend(enterprise)
    signed = oc.sign("OpenContract", operator, oc.proposal("susp", operator=operator))
    assert args_of(oc.refused(signed, "not_operator")) == [operator.address]
    signed = oc.sign("OpenContract", actors.operator, oc.proposal("susp", enterprise=enterprise.address))
    assert args_of(oc.refused(signed, "not_enterprise")) == [enterprise.address]
    assert oc.record(h("role")).status == oc.record(h("ent")).status == oc.record(h("susp")).status == 0


def test_proposals_with_bad_terms_are_refused(oc: Open, actors: Actors) -> None:
    def refuse(label: str, code: str, **kwargs: Any) -> list[Any]:
        signed = oc.sign("OpenContract", actors.operator, oc.proposal(label, **kwargs))
        return args_of(oc.refused(signed, code))

    now = oc.now()
    for start, end in ((now, now), (now + 1, now), (0, 0)):
        assert refuse("w", "invalid_window", valid_from=start, valid_until=end) == [start, end]
    many = [h(f"item {i}") for i in range(33)]
    bad_terms: list[dict[str, Any]] = [
        {"resources": []},
        {"resources": many},
        {"purposes": []},
        {"purposes": many},
        {"obligations": OBLIGATIONS_ALL + 1},
        {"obligations": 2**16 - 1},
    ]
    for bad in bad_terms:
        assert refuse("items", "bad_items", **bad) == []
    assert refuse("u", "unknown_resource", resources=[RES_A, h("no such resource")]) == [
        h("no such resource")
    ]
    assert refuse("dup", "duplicate_resource", resources=[RES_A, RES_B, RES_A]) == [RES_A]
    for resource_id, open_type in (
        (RES_D, OpenType.ON_APPLICATION),
        (RES_E, OpenType.OPEN),
        (RES_F, OpenType.NONE),
    ):
        assert refuse("n", "not_openable", resources=[RES_A, resource_id]) == [resource_id, open_type]
    oc.send(oc.listing(RES_C, True, actors.registrar))
    assert refuse("l", "negative_listed", resources=[RES_A, RES_C]) == [RES_C]
    for label in ("w", "items", "u", "dup", "n", "l"):
        assert oc.record(h(label)).status == Status.NONE

    # The bounds themselves are accepted: 32 purposes, every obligation bit, a window of one second.
    wide = [h(f"purpose {i}") for i in range(32)]
    contract_id, _, _ = oc.propose("wide", purposes=wide, valid_from=now, valid_until=now + 1)
    assert oc.call("purposesOf", contract_id) == wide
    assert oc.record(contract_id).obligations == OBLIGATIONS_ALL

    # An id is used once, whether by a contract or by an application.
    assert refuse("wide", "contract_exists") == [h("wide")]
    oc.submit("taken by an application")
    assert refuse("taken by an application", "contract_exists") == [h("taken by an application")]


# --------------------------------------------------------------------------------------------
# Signature refusals


def test_signatures_by_others_of_other_terms_or_twice_are_refused(oc: Open, actors: Actors) -> None:
    contract_id, proposal, _ = oc.propose("s")
    contract_hash = bytes(oc.record(contract_id).contract_hash)
    unknown = oc.acceptance(h("never"), actors.enterprise, contract_hash=contract_hash)
    assert args_of(oc.refused(unknown, "unknown_contract")) == [h("never")]
    for party in (
        actors.other_dept,
        actors.operator,
        actors.operator2,
        actors.registrar,
        actors.enterprise2,
        actors.stranger,
    ):
        assert args_of(oc.refused(oc.acceptance(contract_id, party), "not_a_party")) == [party.address]
    for forger in (actors.relayer, actors.provider, actors.enterprise2):
        signed = oc.acceptance(contract_id, actors.enterprise, key=forger)
        oc.refused(signed, "invalid_signature")
    honest = oc.acceptance(contract_id, actors.enterprise)
    for bad in (b"", bytes(65)):
        oc.refused(Signed("Acceptance", honest.message, bad), "invalid_signature")
    # Consent to other terms: a proposal differing in one field, or any other hash.
    altered = Signed("OpenContract", {**proposal.message, "purposes": [PURPOSES[0]]}, proposal.signature)
    for other in (oc.struct_hash(altered), h("anything"), ZERO):
        signed = oc.acceptance(contract_id, actors.enterprise, contract_hash=other)
        assert args_of(oc.refused(signed, "contract_hash_mismatch")) == [contract_hash, other]
    assert not oc.call("hasSigned", contract_id, actors.enterprise.address)

    oc.send(honest)
    error = oc.refused(honest, "invalid_account_nonce")
    assert args_of(error) == [actors.enterprise.address, 1]
    again = oc.acceptance(contract_id, actors.enterprise)
    assert args_of(oc.refused(again, "already_signed")) == [contract_id, actors.enterprise.address]
    assert oc.record(contract_id).signed_count == 1

    oc.send(oc.acceptance(contract_id, actors.provider))
    oc.send(oc.acceptance(contract_id, actors.provider2))
    assert oc.record(contract_id).status == Status.EFFECTIVE
    for party in (actors.enterprise, actors.provider):
        late = oc.acceptance(contract_id, party)
        assert args_of(oc.refused(late, "not_proposed")) == [contract_id]
    assert oc.record(contract_id).signed_count == 3


def test_a_party_suspended_after_the_proposal_cannot_sign_until_reinstated(oc: Open, actors: Actors) -> None:
    enterprise = oc.register(Kind.ENTERPRISE, "suspended enterprise")
    provider = oc.register(Kind.DEPARTMENT, "suspended provider")
    resource_id = h("resource of the suspended provider")
    oc.catalog.publish(resource_id, provider, OpenType.CONTRACT)
    contract_id, _, _ = oc.propose("susp", enterprise=enterprise.address, resources=[resource_id, RES_B])
    oc.send(oc.acceptance(contract_id, actors.provider2))
    by_enterprise = oc.acceptance(contract_id, enterprise)
    by_provider = oc.acceptance(contract_id, provider)
    oc.suspend(enterprise)
    oc.suspend(provider)
    assert args_of(oc.refused(by_enterprise, "not_enterprise")) == [enterprise.address]
    assert args_of(oc.refused(by_provider, "not_department")) == [provider.address]
    assert oc.record(contract_id).signed_count == 1

    oc.reinstate(enterprise)
    oc.reinstate(provider)
    oc.send(by_enterprise)  # the very signatures refused while suspended
    oc.send(by_provider)
    assert oc.record(contract_id).status == Status.EFFECTIVE


# --------------------------------------------------------------------------------------------
# Suspension, resumption, termination


def test_status_changes_only_by_the_operator_or_a_registrar_and_only_allowed_ones(
    oc: Open, actors: Actors
) -> None:
    contract_id, _ = oc.effective("st")
    for party in (
        actors.enterprise,
        actors.provider,
        actors.operator2,
        actors.other_dept,
        actors.relayer,
        actors.stranger,
    ):
        signed = oc.change(contract_id, Action.SUSPEND, party)
        assert args_of(oc.refused(signed, "not_authorized_to_change")) == [party.address]
    unknown = oc.change(h("never"), Action.TERMINATE, actors.registrar)
    assert args_of(oc.refused(unknown, "unknown_contract")) == [h("never")]
    honest = oc.change(contract_id, Action.SUSPEND, actors.operator)
    oc.refused(Signed("StatusChange", honest.message, bytes(65)), "invalid_signature")
    for action in (0, Action.RESUME, 4, 255):
        signed = oc.change(contract_id, action, actors.operator)
        error = oc.refused(signed, "invalid_transition")
        assert args_of(error) == [contract_id, Status.EFFECTIVE, action]

    oc.send(honest)
    assert args_of(oc.refused(honest, "invalid_account_nonce")) == [actors.operator.address, 2]
    error = oc.refused(oc.change(contract_id, Action.SUSPEND, actors.registrar), "invalid_transition")
    assert args_of(error) == [contract_id, Status.SUSPENDED, Action.SUSPEND]
    oc.send(oc.change(contract_id, Action.TERMINATE, actors.operator))  # from suspended
    for action in (Action.SUSPEND, Action.RESUME, Action.TERMINATE):
        for signer in (actors.operator, actors.registrar):
            error = oc.refused(oc.change(contract_id, action, signer), "invalid_transition")
            assert args_of(error) == [contract_id, Status.TERMINATED, action]

    # A proposed contract is neither suspended nor resumed.
    proposed, _, _ = oc.propose("st proposed")
    for action in (Action.SUSPEND, Action.RESUME):
        error = oc.refused(oc.change(proposed, action, actors.operator), "invalid_transition")
        assert args_of(error) == [proposed, Status.PROPOSED, action]

    # Its operator, once suspended in the registry, no longer may; a registrar still does.
    operator = oc.register(Kind.OPERATOR, "operator suspended later")
    own, _ = oc.effective("st own", operator=operator)
    oc.suspend(operator)
    error = oc.refused(oc.change(own, Action.SUSPEND, operator), "not_operator")
    assert args_of(error) == [operator.address]
    oc.send(oc.change(own, Action.SUSPEND, actors.registrar2))
    assert oc.record(own).status == Status.SUSPENDED


def test_a_proposed_contract_may_be_withdrawn_before_it_takes_effect(oc: Open, actors: Actors) -> None:
    contract_id, _, receipt = oc.propose("withdrawn")
    proposed_at = oc.time(receipt)
    oc.send(oc.acceptance(contract_id, actors.enterprise))
    late = oc.acceptance(contract_id, actors.provider)
    receipt = oc.send(oc.change(contract_id, Action.TERMINATE, actors.operator, "withdrawn"))
    terminated_at = oc.time(receipt)
    assert oc.events(receipt, "ContractStatusChanged") == [
        {
            "contractId": contract_id,
            "by": actors.operator.address,
            "status": Status.TERMINATED,
            "reasonHash": h("withdrawn"),
        }
    ]
    record = oc.record(contract_id)
    assert (record.status, record.signed_count, record.effective_at, record.terminated_at) == (
        Status.TERMINATED,
        1,
        0,
        terminated_at,
    )
    assert args_of(oc.refused(late, "not_proposed")) == [contract_id]
    assert oc.status_at(contract_id, proposed_at) == Status.PROPOSED
    assert oc.status_at(contract_id, terminated_at - 1) == Status.PROPOSED
    assert oc.status_at(contract_id, terminated_at) == Status.TERMINATED
    ent = actors.enterprise.address
    error = oc.check(contract_id, ent, RES_A, PURPOSES[0], terminated_at - 1, "contract_not_effective")
    assert error == [contract_id, terminated_at - 1]
    error = oc.check(contract_id, ent, RES_A, PURPOSES[0], terminated_at, "contract_terminated")
    assert error == [contract_id, terminated_at]


# --------------------------------------------------------------------------------------------
# On-application opening (依申请开放)


@pytest.mark.parametrize("order", ["provider_first", "operator_first"])
def test_an_application_approved_by_its_provider_and_an_operator_opens_the_resource(
    oc: Open, actors: Actors, order: str
) -> None:
    application_id, signed, receipt = oc.submit(f"app {order}")
    submitted_at = oc.time(receipt)
    message = signed.message
    application_hash = oc.struct_hash(signed)
    assert oc.events(receipt, "ApplicationSubmitted") == [
        {
            "applicationId": application_id,
            "resourceId": RES_D,
            "enterprise": actors.enterprise.address,
            "applicationHash": application_hash,
            "purpose": APP_PURPOSE,
            "scopeHash": h(f"app {order} scope"),
            "qualificationsHash": h(f"app {order} qualifications"),
            "validFrom": message["validFrom"],
            "validUntil": message["validUntil"],
        }
    ]
    pending = AppRecord(
        actors.enterprise.address,
        actors.provider.address,
        ZERO_ADDRESS,
        AppStatus.PENDING,
        False,
        submitted_at,
        message["validFrom"],
        message["validUntil"],
        RES_D,
        APP_PURPOSE,
        h(f"app {order} scope"),
        application_hash,
    )
    assert oc.application_of(application_id) == pending
    assert oc.record(application_id).status == Status.NONE
    ent = actors.enterprise.address
    error = oc.check(application_id, ent, RES_D, APP_PURPOSE, submitted_at, "unknown_contract")
    assert error == [application_id]

    reviewers = [actors.provider, actors.operator]
    if order == "operator_first":
        reviewers.reverse()
    first, second = reviewers
    receipt = oc.send(oc.review(application_id, first, reason="first look"))
    assert oc.events(receipt, "ApplicationReviewed") == [
        {
            "applicationId": application_id,
            "reviewer": first.address,
            "approve": True,
            "reasonHash": h("first look"),
            "status": AppStatus.PENDING,
        }
    ]
    assert oc.events(receipt, "ContractEffective") == []
    assert oc.application_of(application_id) == (
        pending._replace(provider_approved=True)
        if first is actors.provider
        else pending._replace(operator=actors.operator.address)
    )
    assert oc.record(application_id).status == Status.NONE

    receipt = oc.send(oc.review(application_id, second, reason="second look"))
    approved_at = oc.time(receipt)
    assert oc.events(receipt, "ApplicationReviewed") == [
        {
            "applicationId": application_id,
            "reviewer": second.address,
            "approve": True,
            "reasonHash": h("second look"),
            "status": AppStatus.APPROVED,
        }
    ]
    assert oc.events(receipt, "ContractEffective") == [
        {"contractId": application_id, "kind": KIND_APPLICATION, "at": approved_at}
    ]
    assert oc.application_of(application_id) == pending._replace(
        status=AppStatus.APPROVED, provider_approved=True, operator=actors.operator.address
    )
    assert oc.record(application_id) == Record(
        KIND_APPLICATION,
        Status.EFFECTIVE,
        3,
        3,
        OBLIGATIONS_APPLICATION,
        actors.operator.address,
        ent,
        message["validFrom"],
        message["validUntil"],
        submitted_at,
        approved_at,
        0,
        application_hash,
        h(f"app {order} scope"),
        application_hash,
    )
    assert oc.signers(application_id) == [ent, actors.provider.address, actors.operator.address]
    assert oc.call("resourcesOf", application_id) == [RES_D]
    assert oc.call("purposesOf", application_id) == [APP_PURPOSE]
    oc.authorized(application_id, ent, RES_D, APP_PURPOSE, approved_at)
    oc.authorized(application_id, ent, RES_D, APP_PURPOSE, message["validUntil"] - 1)
    error = oc.check(application_id, ent, RES_D, APP_PURPOSE, approved_at - 1, "contract_not_effective")
    assert error == [application_id, approved_at - 1]
    error = oc.check(application_id, ent, RES_D, PURPOSES[0], approved_at, "purpose_not_in_contract")
    assert error == [application_id, PURPOSES[0]]
    error = oc.check(application_id, ent, RES_A, APP_PURPOSE, approved_at, "resource_not_in_contract")
    assert error == [application_id, RES_A]

    # Decided: nobody reviews it again. Its operator is the approving one, who may suspend it.
    for reviewer in (actors.provider, actors.operator, actors.operator2):
        late = oc.review(application_id, reviewer)
        assert args_of(oc.refused(late, "not_pending_application")) == [application_id]
    by_other = oc.change(application_id, Action.SUSPEND, actors.operator2)
    assert args_of(oc.refused(by_other, "not_authorized_to_change")) == [actors.operator2.address]
    oc.send(oc.change(application_id, Action.SUSPEND, actors.operator))
    assert oc.record(application_id).status == Status.SUSPENDED


@pytest.mark.parametrize("case", ["by_provider", "by_operator", "by_operator_after_provider_approval"])
def test_a_rejected_application_is_final(oc: Open, actors: Actors, case: str) -> None:
    application_id, _, _ = oc.submit(f"rej {case}")
    if case == "by_operator_after_provider_approval":
        oc.send(oc.review(application_id, actors.provider))
    rejecter = actors.provider if case == "by_provider" else actors.operator
    receipt = oc.send(oc.review(application_id, rejecter, approve=False, reason="unqualified"))
    assert oc.events(receipt, "ApplicationReviewed") == [
        {
            "applicationId": application_id,
            "reviewer": rejecter.address,
            "approve": False,
            "reasonHash": h("unqualified"),
            "status": AppStatus.REJECTED,
        }
    ]
    assert oc.events(receipt, "ContractEffective") == []
    assert oc.application_of(application_id).status == AppStatus.REJECTED
    assert oc.record(application_id).status == Status.NONE
    for reviewer in (actors.provider, actors.operator, actors.operator2):
        for approve in (True, False):
            late = oc.review(application_id, reviewer, approve=approve)
            assert args_of(oc.refused(late, "not_pending_application")) == [application_id]
    assert oc.application_of(application_id).status == AppStatus.REJECTED
    # The id stays taken.
    again = oc.sign("Application", actors.enterprise, oc.application(f"rej {case}"))
    assert args_of(oc.refused(again, "application_exists")) == [application_id]


def test_applications_that_are_forged_or_out_of_bounds_are_refused(oc: Open, actors: Actors) -> None:
    fields_ = oc.application("ap")
    for forger in (actors.relayer, actors.provider, actors.enterprise2):
        signed = oc.sign("Application", actors.enterprise, fields_, key=forger)
        oc.refused(signed, "invalid_signature")
    other_chain = oc.sign("Application", actors.enterprise, fields_, chain_id=oc.chain.chain_id + 1)
    oc.refused(other_chain, "invalid_signature")
    honest = oc.sign("Application", actors.enterprise, fields_)
    for change in ({"purpose": h("other")}, {"validUntil": fields_["validUntil"] + 1}, {"resourceId": RES_A}):
        oc.refused(Signed("Application", {**honest.message, **change}, honest.signature), "invalid_signature")

    for party in (actors.provider, actors.operator, actors.registrar, actors.stranger):
        signed = oc.sign("Application", party, oc.application("role", enterprise=party))
        assert args_of(oc.refused(signed, "not_enterprise")) == [party.address]
    now = oc.now()
    for start, end in ((now, now), (now + 1, now)):
        signed = oc.sign(
            "Application", actors.enterprise, oc.application("w", valid_from=start, valid_until=end)
        )
        assert args_of(oc.refused(signed, "invalid_window")) == [start, end]
    for resource_id, open_type in (
        (RES_A, OpenType.CONTRACT),
        (RES_E, OpenType.OPEN),
        (RES_F, OpenType.NONE),
    ):
        signed = oc.sign("Application", actors.enterprise, oc.application("n", resource=resource_id))
        assert args_of(oc.refused(signed, "not_openable")) == [resource_id, open_type]
    signed = oc.sign("Application", actors.enterprise, oc.application("u", resource=h("no such resource")))
    assert args_of(oc.refused(signed, "unknown_resource")) == [h("no such resource")]

    oc.send(honest)
    assert args_of(oc.refused(honest, "invalid_account_nonce")) == [actors.enterprise.address, 1]
    again = oc.sign("Application", actors.enterprise2, oc.application("ap", enterprise=actors.enterprise2))
    assert args_of(oc.refused(again, "application_exists")) == [h("ap")]
    contract_id, _, _ = oc.propose("contract id")
    signed = oc.sign("Application", actors.enterprise, oc.application("contract id"))
    assert args_of(oc.refused(signed, "application_exists")) == [contract_id]

    oc.send(oc.listing(RES_D, True, actors.registrar))
    signed = oc.sign("Application", actors.enterprise, oc.application("listed"))
    assert args_of(oc.refused(signed, "negative_listed")) == [RES_D]
    for label in ("role", "w", "n", "u", "listed"):
        assert oc.application_of(h(label)).status == AppStatus.NONE


def test_only_its_provider_and_one_operator_review_an_application(oc: Open, actors: Actors) -> None:
    application_id, _, _ = oc.submit("rv")
    unknown = oc.review(h("never"), actors.provider)
    assert args_of(oc.refused(unknown, "not_pending_application")) == [h("never")]
    for party in (
        actors.other_dept,
        actors.provider2,
        actors.enterprise,
        actors.registrar,
        actors.relayer,
        actors.stranger,
    ):
        signed = oc.review(application_id, party)
        assert args_of(oc.refused(signed, "not_reviewer")) == [party.address]
    honest = oc.review(application_id, actors.provider)
    for bad in (b"", honest.signature[:64], bytes(65)):
        oc.refused(Signed("Review", honest.message, bad), "invalid_signature")

    oc.send(honest)
    assert args_of(oc.refused(honest, "invalid_account_nonce")) == [actors.provider.address, 1]
    for approve in (True, False):
        again = oc.review(application_id, actors.provider, approve=approve)
        assert args_of(oc.refused(again, "already_reviewed")) == [application_id, actors.provider.address]
    assert oc.application_of(application_id).status == AppStatus.PENDING

    # One operator's approval stands for the operators: neither it nor a second operator reviews again.
    second, _, _ = oc.submit("rv2")
    oc.send(oc.review(second, actors.operator))
    for operator in (actors.operator, actors.operator2):
        for approve in (True, False):
            again = oc.review(second, operator, approve=approve)
            assert args_of(oc.refused(again, "already_reviewed")) == [second, operator.address]
    assert oc.application_of(second).operator == actors.operator.address
    oc.send(oc.review(second, actors.provider))
    assert oc.application_of(second).status == AppStatus.APPROVED

    # A suspended provider or operator does not review.
    provider = oc.register(Kind.DEPARTMENT, "reviewing provider")
    operator = oc.register(Kind.OPERATOR, "reviewing operator")
    resource_id = h("on-application resource of the reviewing provider")
    oc.catalog.publish(resource_id, provider, OpenType.ON_APPLICATION)
    third, _, _ = oc.submit("rv3", resource=resource_id)
    oc.suspend(provider)
    oc.suspend(operator)
    assert args_of(oc.refused(oc.review(third, provider), "not_department")) == [provider.address]
    assert args_of(oc.refused(oc.review(third, operator), "not_reviewer")) == [operator.address]
    assert oc.application_of(third).status == AppStatus.PENDING


def test_the_final_approval_rechecks_the_resource(oc: Open, actors: Actors) -> None:
    """Listed on the negative list, or no longer open on application, between application and approval."""
    listed, _, _ = oc.submit("listed meanwhile")
    oc.send(oc.review(listed, actors.provider))
    oc.send(oc.listing(RES_D, True, actors.registrar))
    approval = oc.review(listed, actors.operator)
    assert args_of(oc.refused(approval, "negative_listed")) == [RES_D]
    record = oc.application_of(listed)
    assert (record.status, record.provider_approved, record.operator) == (
        AppStatus.PENDING,
        True,
        ZERO_ADDRESS,
    )
    assert oc.record(listed).status == Status.NONE
    oc.send(oc.listing(RES_D, False, actors.registrar))
    oc.send(approval)  # the same signature, once delisted
    assert oc.record(listed).status == Status.EFFECTIVE

    resource_id = h("on-application resource closed later")
    oc.catalog.publish(resource_id, actors.provider, OpenType.ON_APPLICATION)
    closed, _, _ = oc.submit("closed meanwhile", resource=resource_id)
    oc.send(oc.review(closed, actors.operator))
    oc.catalog.publish(resource_id, actors.provider, OpenType.NONE, version=2)
    approval = oc.review(closed, actors.provider)
    assert args_of(oc.refused(approval, "not_openable")) == [resource_id, OpenType.NONE]
    assert oc.application_of(closed).status == AppStatus.PENDING
    oc.send(oc.review(closed, actors.provider, approve=False))  # a rejection still goes through
    assert oc.application_of(closed).status == AppStatus.REJECTED
    assert oc.record(closed).status == Status.NONE


# --------------------------------------------------------------------------------------------
# The negative list (负面清单)


def test_the_registrar_keeps_the_negative_list_with_its_history(oc: Open, actors: Actors) -> None:
    for party in (actors.operator, actors.provider, actors.enterprise, actors.stranger):
        signed = oc.listing(RES_C, True, party)
        assert args_of(oc.refused(signed, "not_registrar")) == [party.address]
    honest = oc.listing(RES_C, True, actors.registrar, "personal data")
    oc.refused(Signed("Listing", honest.message, bytes(65)), "invalid_signature")
    assert not oc.call("isNegativeListed", RES_C)

    receipt = oc.send(honest)
    listed_at = oc.time(receipt)
    assert oc.events(receipt, "NegativeListChanged") == [
        {
            "resourceId": RES_C,
            "by": actors.registrar.address,
            "listed": True,
            "reasonHash": h("personal data"),
        }
    ]
    assert oc.call("isNegativeListed", RES_C)
    assert args_of(oc.refused(honest, "invalid_account_nonce")) == [actors.registrar.address, 1]
    twice = oc.listing(RES_C, True, actors.registrar2)
    assert args_of(oc.refused(twice, "listing_unchanged")) == [RES_C, True]

    receipt = oc.send(oc.listing(RES_C, False, actors.registrar2, "anonymised"))
    delisted_at = oc.time(receipt)
    assert oc.events(receipt, "NegativeListChanged") == [
        {"resourceId": RES_C, "by": actors.registrar2.address, "listed": False, "reasonHash": h("anonymised")}
    ]
    assert not oc.call("isNegativeListed", RES_C)
    for resource_id in (RES_C, RES_B, h("never listed")):
        unlisted = oc.listing(resource_id, False, actors.registrar)
        assert args_of(oc.refused(unlisted, "listing_unchanged")) == [resource_id, False]
    receipt = oc.send(oc.listing(RES_C, True, actors.registrar, "again"))
    relisted_at = oc.time(receipt)
    assert [
        oc.call("listedAt", RES_C, at)
        for at in (0, listed_at - 1, listed_at, delisted_at - 1, delisted_at, relisted_at - 1, relisted_at)
    ] == [False, False, True, True, False, False, True]
    assert oc.call("isNegativeListed", RES_C)
    assert not oc.call("listedAt", RES_A, relisted_at)


# --------------------------------------------------------------------------------------------
# Gas


def test_gas_stays_bounded(
    oc: Open,
    actors: Actors,
    record_testsuite_property: Callable[[str, object], None],
) -> None:
    """Gas of a proposal (two resources of two providers, two purposes), a signature, the signature that
    makes it effective, a status change, an application, a first review and the approving review, and a
    listing; recorded as JUnit suite properties. Each is measured on a second occurrence, so the signers'
    nonce slots are already non-zero, as in steady operation. Measured when written (solc 0.8.28,
    optimizer 200): propose 605k, sign 79k, the signature that makes it effective 131k, status change
    76k, application 242k, first review 51k, approving review 481k, listing 73k. A proposal writes
    every resource, purpose and signer twice (array and membership map) beside the 7-slot record; the
    approving review copies the application into a fresh record and its arrays.
    """
    oc.effective("warm")
    warm, _, _ = oc.submit("warm app")
    oc.send(oc.review(warm, actors.provider))
    oc.send(oc.review(warm, actors.operator))
    oc.send(oc.listing(RES_C, True, actors.registrar))

    gas: dict[str, int] = {}
    contract_id, _, receipt = oc.propose("gas")
    gas["propose"] = receipt.gas_used
    gas["sign"] = oc.send(oc.acceptance(contract_id, actors.enterprise)).gas_used
    oc.send(oc.acceptance(contract_id, actors.provider))
    gas["sign_effective"] = oc.send(oc.acceptance(contract_id, actors.provider2)).gas_used
    gas["change_status"] = oc.send(oc.change(contract_id, Action.SUSPEND, actors.operator)).gas_used
    application_id, _, receipt = oc.submit("gas app")
    gas["submit_application"] = receipt.gas_used
    gas["review"] = oc.send(oc.review(application_id, actors.provider)).gas_used
    gas["review_approved"] = oc.send(oc.review(application_id, actors.operator)).gas_used
    gas["set_listing"] = oc.send(oc.listing(RES_C, False, actors.registrar)).gas_used
    assert set(gas) == set(GAS_CEILING)
    for name, used in gas.items():
        record_testsuite_property(f"gas_open_{name}", used)
    assert {name: used for name, used in gas.items() if not 21_000 < used < GAS_CEILING[name]} == {}, str(gas)


def test_the_last_signature_rechecks_the_resources(oc: Open, actors: Actors) -> None:
    """A resource listed between the proposal and the last signature: the contract never takes effect
    (the listing, and a provider's retyping, are re-read when the last party signs)."""
    contract_id, _, _ = oc.propose("listed before effect")
    oc.send(oc.acceptance(contract_id, actors.enterprise))
    oc.send(oc.acceptance(contract_id, actors.provider))
    oc.send(oc.listing(RES_B, True, actors.registrar))
    error = oc.refused(oc.acceptance(contract_id, actors.provider2), "negative_listed")
    assert args_of(error) == [RES_B]
    assert oc.record(contract_id).status == Status.PROPOSED


def test_a_purpose_is_named_once(oc: Open) -> None:
    signed = oc.sign("OpenContract", oc.actors.operator, oc.proposal("twice", purposes=[PURPOSES[0]] * 2))
    oc.refused(signed, "bad_items")


def test_every_party_of_an_application_contract_has_signed(oc: Open, actors: Actors) -> None:
    application_id, _, _ = oc.submit("signed by three")
    oc.send(oc.review(application_id, actors.provider))
    oc.send(oc.review(application_id, actors.operator))
    parties = [actors.enterprise.address, actors.provider.address, actors.operator.address]
    assert oc.signers(application_id) == parties
    assert all(oc.call("hasSigned", application_id, p) for p in parties)
