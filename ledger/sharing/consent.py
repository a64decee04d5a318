"""Relaying a party's signed consent: one path for custodial and client-mode signatures.

DESIGN.md "Trust model": every consent the share contract acts on — a catalog version, a request,
a decision, a co-signature, a revocation, a dispute and its answer — is an EIP-712 document signed
by the acting party and checked on chain (ecrecover, the signer's role, its nonce); the platform
only relays. Two ways to sign (DESIGN.md, ``"signing"``):

- ``custodial``: the server signs now with the party's key, which it holds sealed;
- ``client``: the party keeps its key; the document is stored and returned as ``typed_data``,
  the party signs it with any wallet (``eth_signTypedData_v4``) or ``eth_account``, and POSTs the
  signature, which is checked here against the stored document before a transaction is paid for.

Stale nonce: a document carries its signer's nonce as of issue time. If another signature of the
same party lands first, that nonce is spent and the contract refuses the document for ever
(``InvalidAccountNonce``). The relay then re-issues the document with the current nonce (stored by
the caller's ``reissue``) and raises :class:`StaleNonce` (409 ``stale_nonce``) so the client signs
the fresh one; a custodial document is simply signed again, up to a few times.

Batches: :meth:`Consent.relay_many` carries many custodial documents of one signer in one
``multicall`` transaction (OpenZeppelin ``Multicall`` on ``ShareLedger``): each inner call is a
delegatecall, so the contract checks every signature, role and nonce exactly as if it came alone, and
one refusal reverts the whole batch with that call's custom error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types
from web3.contract.contract import Contract

from ledger.chain.client import Chain, Receipt
from ledger.errors import Conflict, ContractRevert, InvalidInput
from ledger.identity.parties import PartyService
from ledger.sharing import eip712
from ledger.store.models import Party
from ledger.types import Custody, Signing

# A custodial signer losing the nonce race this often in a row is reported rather than retried.
CUSTODIAL_ATTEMPTS = 3
# Each consent is first run as an eth_call — one execution, which surfaces the contract's custom error
# so a refusal costs no transaction — then sent with this gas limit instead of an estimate: py-evm's
# estimator is a binary search of ~13 executions, ~70 % of each embedded transaction's time, and the
# call-then-send path is ~3× faster (docs/benchmarks.md, "Share workflow"). About 2.5× the dearest
# step measured (an unconditional request with its grant, 188k gas); unused gas is not charged.
RELAY_GAS = 500_000

Reissue = Callable[[int], dict[str, Any]]
"""Given the signer's current nonce: build the fresh document, store it for the client, return it."""


class StaleNonce(Conflict):
    """The signed document's nonce was spent by another signature of the same party (409)."""

    code = "stale_nonce"


@dataclass(frozen=True)
class Relayed:
    """A transaction that carried a consent: its receipt, and the document and signature it carried
    (not the ones first issued if a custodial document had to be signed again)."""

    receipt: Receipt
    document: dict[str, Any]
    signature: bytes

    @property
    def signature_hex(self) -> str:
        return "0x" + self.signature.hex()


@dataclass(frozen=True)
class RelayedMany:
    """A ``multicall`` transaction that carried several consents: its receipt, and the documents and
    signatures it carried, in order (re-issued ones if the nonces had to be refreshed)."""

    receipt: Receipt
    documents: list[dict[str, Any]]
    signatures: list[bytes]


class Consent:
    """Typed data, signatures and relaying for one ``ShareLedger`` deployment."""

    def __init__(
        self, *, chain: Chain, contract: Contract, parties: PartyService, relayer: LocalAccount
    ) -> None:
        self.chain = chain
        self.contract = contract
        self.parties = parties
        self.relayer = relayer

    def typed(self, primary: str, message: dict[str, Any]) -> dict[str, Any]:
        """The EIP-712 document; the domain binds it to this chain id and contract address."""
        return eip712.typed_data(
            primary, message, chain_id=self.chain.chain_id, contract=self.contract.address
        )

    def nonce(self, address: str) -> int:
        return int(self.chain.call(self.contract.functions.nonces(address)))

    def custodial_key(self, signer: Party) -> LocalAccount:
        """The key the server holds for ``signer``. A party that registered its own address keeps its
        key: the server cannot sign for it (409 ``client_custody``)."""
        if signer.custody is Custody.CLIENT:
            raise Conflict(
                f'party {signer.id} keeps its own key: use "signing": "client"', code="client_custody"
            )
        return self.parties.signer(signer)

    def sign(self, signer: Party, document: dict[str, Any], signing: Signing) -> bytes | None:
        """The custodial signature, or None in client mode (the party signs ``typed_data`` itself)."""
        if signing is Signing.CLIENT:
            return None
        return eip712.sign(self.custodial_key(signer), document)

    @staticmethod
    def check(document: dict[str, Any], signature: str, expected: str) -> bytes:
        """The raw signature if it is ``expected``'s over ``document``; refuses a wrong key, another
        chain id, another contract or another message alike, since each recovers another address."""
        try:
            raw = bytes.fromhex(signature.removeprefix("0x"))
            signer = eip712.recover(document, raw)
        except Exception as exc:  # eth-account / eth-keys raise several types for malformed input
            raise InvalidInput(
                "the signature is not a valid secp256k1 signature", code="invalid_signature"
            ) from exc
        if signer.lower() != expected.lower():
            raise InvalidInput(f"the signature is by {signer}, not by {expected}", code="wrong_signer")
        return raw

    def relay(
        self,
        function: str,
        document: dict[str, Any],
        signature: bytes,
        *,
        signer: Party,
        custodial: bool,
        reissue: Reissue,
        gas: int = RELAY_GAS,
    ) -> Relayed:
        """Send ``function(document, signature)`` from the relayer; on a spent nonce, re-issue.

        A state change between the eth_call and the transaction (another relayer's transaction landing
        in between) makes the transaction revert on chain instead: ``tx_reverted``, nothing changed.
        """
        for _ in range(CUSTODIAL_ATTEMPTS):
            fn = getattr(self.contract.functions, function)(eip712.as_tuple(document), signature)
            try:
                self.chain.call(fn)
                return Relayed(self.chain.transact(fn, self.relayer, gas=gas), document, signature)
            except ContractRevert as exc:
                if exc.code != "invalid_account_nonce":
                    raise
                stale = int(document["message"]["nonce"])
                document = reissue(self.nonce(signer.address))
                if not custodial:
                    raise StaleNonce(
                        f"this {document['primaryType']} was signed with nonce {stale}, but another "
                        f"signature of {signer.address} landed first (its nonce is now "
                        f"{document['message']['nonce']}); fresh typed_data was issued: GET it and "
                        "sign again",
                        typed_data=document,
                    ) from exc
                signature = eip712.sign(self.parties.signer(signer), document)
        raise _lost_race(signer, document)

    def relay_many(
        self, function: str, documents: Sequence[dict[str, Any]], *, signer: Party, gas: int
    ) -> RelayedMany:
        """Sign every document with ``signer``'s custodial key and send ``function(document, signature)``
        for all of them in ONE ``multicall`` transaction from the relayer.

        The documents must carry consecutive nonces of ``signer`` in order (the contract runs the inner
        calls in order, each spending the next nonce). As in :meth:`relay`, the batch is first run as an
        eth_call, so a refusal — the first failing call's custom error, bubbled up by ``Multicall`` —
        is raised decoded before a transaction is paid for, and nothing of the batch is kept. On a
        spent nonce (a single consent of ``signer`` landed since the nonces were read), every document
        is re-issued with fresh consecutive nonces and signed again, up to ``CUSTODIAL_ATTEMPTS``
        times; so the documents must stay valid under another nonce (a new resource's first version
        does). A state change between the eth_call and the transaction reverts it on chain instead:
        ``tx_reverted``, nothing of the batch changed.
        """
        key = self.custodial_key(signer)
        encode = self._calldata(function)
        batch = list(documents)
        for _ in range(CUSTODIAL_ATTEMPTS):
            signatures = [eip712.sign(key, document) for document in batch]
            calls = [
                encode(document, signature) for document, signature in zip(batch, signatures, strict=True)
            ]
            fn = self.contract.functions.multicall(calls)
            try:
                self.chain.call(fn)
                return RelayedMany(self.chain.transact(fn, self.relayer, gas=gas), batch, signatures)
            except ContractRevert as exc:
                if exc.code != "invalid_account_nonce":
                    raise
                fresh = self.nonce(signer.address)
                batch = [renonce(document, fresh + i) for i, document in enumerate(batch)]
        raise _lost_race(signer, batch[0])

    def _calldata(self, function: str) -> Callable[[dict[str, Any], bytes], bytes]:
        """The calldata of ``function(document, signature)``, encoded by the ABI codec directly: web3's
        ``encode_abi`` matches the function against its arguments on every call, 1.3 ms an item (more
        than its signature) against 0.04 ms."""
        [abi] = [
            item
            for item in self.contract.abi
            if item.get("type") == "function" and item.get("name") == function
        ]
        selector = function_abi_to_4byte_selector(abi)
        types = get_abi_input_types(abi)
        codec = self.chain.w3.codec

        def encode(document: dict[str, Any], signature: bytes) -> bytes:
            return selector + codec.encode(types, [eip712.as_tuple(document), signature])

        return encode


def _lost_race(signer: Party, document: dict[str, Any]) -> StaleNonce:
    return StaleNonce(
        f"{signer.address} kept losing the nonce race ({CUSTODIAL_ATTEMPTS} attempts): retry",
        typed_data=document,
    )


def renonce(document: dict[str, Any], nonce: int, **changes: Any) -> dict[str, Any]:
    """A copy of ``document`` with a fresh nonce (and other message fields changed)."""
    return {**document, "message": {**document["message"], **changes, "nonce": nonce}}
