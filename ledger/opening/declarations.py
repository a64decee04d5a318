"""Usage declarations: an enterprise declares the derived products it made from opened data.

A contract obliges the enterprise to declare derived products (衍生产品); each declaration names the
product, what it is, the accesses it was made from (log indices — each must be the enterprise's own
access under this contract), the purpose it serves and how it is released. It is an entry of the
log like any other event, so it is anchored with the rest and the regulator's lineage links product →
accesses → resources; the ``declared_use_mismatch`` alert compares the declared use with the
purposes the data was taken for.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from ledger import purposes
from ledger.errors import Conflict, Forbidden, InvalidInput, NotFound
from ledger.log.store import LogStore
from ledger.opening.base import Opening, iso
from ledger.opening.contracts import OpenContractService
from ledger.store.models import DerivedProduct, Party
from ledger.types import ContractStatus, PartyKind, ReleaseMode

MAX_INPUTS = 1000
AUDITORS = (PartyKind.REGISTRAR, PartyKind.REGULATOR)


class DeclarationService:
    def __init__(self, opening: Opening, contracts: OpenContractService) -> None:
        self.o = opening
        self.contracts = contracts

    def declare(
        self,
        caller: Party,
        *,
        contract_id: str,
        name: str,
        description: str,
        inputs: Sequence[int],
        purpose: str,
        release_mode: ReleaseMode,
    ) -> DerivedProduct:
        if caller.kind is not PartyKind.ENTERPRISE:
            raise Forbidden("only an enterprise declares its derived products", code="forbidden_role")
        contract = self.contracts.get(caller, contract_id)
        if contract.enterprise_id != caller.id:
            raise Forbidden(
                "only the contract's enterprise declares under it", code="not_contract_enterprise"
            )
        if contract.status in (ContractStatus.AWAITING_SIGNATURE, ContractStatus.PROPOSED):
            raise Conflict(f"contract {contract.id} never took effect", code="contract_not_effective")
        if not name.strip() or len(name) > 200:
            raise InvalidInput("name the derived product (1-200 characters)", code="invalid_name")
        if not 1 <= len(inputs) <= MAX_INPUTS or len(set(inputs)) != len(inputs):
            raise InvalidInput(
                f"name 1 to {MAX_INPUTS} distinct input accesses by log index", code="invalid_inputs"
            )
        purposes.get(purpose)
        resources = _check_inputs(self.o.log, inputs, caller.id, contract.id)
        product_id = uuid.uuid4().hex
        index = self.o.record(
            "declaration",
            f"declaration:{product_id}",
            caller.id,
            resources[0],
            {
                "declaration": product_id,
                "contract": contract.id,
                "name": name.strip(),
                "description": description.strip()[:2000],
                "inputs": sorted(inputs),
                "resources": resources,
                "purpose": purpose,
                "release_mode": release_mode.value,
            },
        )
        row = DerivedProduct(
            id=product_id,
            enterprise_id=caller.id,
            contract_id=contract.id,
            name=name.strip(),
            description=description.strip()[:2000],
            inputs_json=json.dumps(sorted(inputs)),
            resources_json=json.dumps(resources),
            purpose=purpose,
            release_mode=release_mode,
            log_index=index,
        )
        with self.o.store.session() as session:
            session.add(row)
        return row

    def visible_to(self, caller: Party, contract_id: str | None = None) -> list[DerivedProduct]:
        query = select(DerivedProduct).order_by(DerivedProduct.created_at.desc()).limit(500)
        if contract_id is not None:
            query = query.where(DerivedProduct.contract_id == contract_id.lower())
        if caller.kind not in (*AUDITORS, PartyKind.OPERATOR):
            if caller.kind is not PartyKind.ENTERPRISE:
                raise Forbidden("declarations are for enterprises and supervisors", code="forbidden_role")
            query = query.where(DerivedProduct.enterprise_id == caller.id)
        with self.o.store.read() as session:
            return list(session.scalars(query))

    def get(self, caller: Party, product_id: str) -> DerivedProduct:
        with self.o.store.read() as session:
            row = session.get(DerivedProduct, product_id)
        if row is None or (
            caller.kind not in (*AUDITORS, PartyKind.OPERATOR) and caller.id != row.enterprise_id
        ):
            raise NotFound(f"no declaration {product_id}", code="declaration_not_found")
        return row


def view(row: DerivedProduct) -> dict[str, Any]:
    return {
        "id": row.id,
        "enterprise_id": row.enterprise_id,
        "contract_id": row.contract_id,
        "name": row.name,
        "description": row.description,
        "inputs": json.loads(row.inputs_json),
        "resources": json.loads(row.resources_json),
        "purpose": row.purpose,
        "release_mode": row.release_mode.value,
        "log_index": row.log_index,
        "created_at": iso(row.created_at),
    }


def _check_inputs(log: LogStore, inputs: Sequence[int], enterprise_id: str, contract_id: str) -> list[str]:
    """Each input must be an access this enterprise made under this contract; the resources they cover."""
    resources: list[str] = []
    for index in sorted(inputs):
        if index < 0:
            raise InvalidInput(f"log index {index} is negative", code="invalid_inputs")
        try:
            entry = json.loads(log.entry(index).entry)
        except NotFound:
            raise InvalidInput(f"there is no log entry {index}", code="invalid_inputs") from None
        if (
            entry.get("kind") != "access"
            or entry.get("accessor") != enterprise_id
            or entry.get("contract") != contract_id
        ):
            raise InvalidInput(
                f"log entry {index} is not an access of yours under contract {contract_id}",
                code="invalid_inputs",
            )
        if entry["resource"] not in resources:
            resources.append(entry["resource"])
    return resources
