"""Lineage (流通路径): where one resource's data went — provider → grants → accessors → onward shares.

明确数据资产来源、所有权、使用权和流通路径: the graph is drawn from the ledger's own records — the grants
of the share workflow and the access events of the log — never from what a party declares:

- **provider** — the resource's owner (一数一源);
- **grant** — each grant on the resource (its grantee, purpose and status from the share records);
- **accessor** — each party that took the resource's data, with its access count and the purpose
  codes it declared in the log (and its refused attempts);
- **onward_resource** — *onward shares*: a catalog entry that an accessor itself provides and that
  others accessed at or after that accessor's first access of this resource. The ledger cannot see
  inside a department, so this is where the data *may* have flowed on — the resources through which
  it could have been passed further — for the regulator to look at, not a proof that it was;
- **contract** and **derived_product** — open contracts (契约式开放) naming the resource and the
  derived products declared under them, drawn from the open-contract tables.

Edges carry a count (accesses) and the purpose codes seen on them.
"""

from __future__ import annotations

import enum
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from ledger.errors import Forbidden, NotFound
from ledger.log.events import EventKind
from ledger.store.db import Store
from ledger.store.models import DerivedProduct, LogEntry, OpenContract, Party, Resource, ShareRequest
from ledger.types import PartyKind

AUDITORS = (PartyKind.REGULATOR, PartyKind.REGISTRAR)
ONWARD_ACCESSORS = 10  # onward shares are followed for the accessors that took the most


class NodeKind(enum.StrEnum):
    PROVIDER = "provider"
    GRANT = "grant"
    CONTRACT = "contract"
    ACCESSOR = "accessor"
    DERIVED_PRODUCT = "derived_product"
    ONWARD_RESOURCE = "onward_resource"


class EdgeKind(enum.StrEnum):
    GRANT = "grant"  # provider → grant (count: accesses under it)
    CONTRACT = "contract"  # provider → open contract
    ACCESS = "access"  # grant/contract → accessor, or provider → accessor without either
    DERIVED = "derived"  # accessor → derived product
    ONWARD = "onward"  # accessor → a resource it provides that others accessed afterwards


@dataclass(frozen=True)
class Node:
    id: str
    kind: NodeKind
    label: str
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind.value, "label": self.label, **self.attrs}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: EdgeKind
    count: int
    purposes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "kind": self.kind.value,
            "count": self.count,
            "purposes": self.purposes,
        }


@dataclass(frozen=True)
class Lineage:
    resource: dict[str, Any]  # id, code, name, provider_id
    nodes: list[Node]
    edges: list[Edge]

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``GET /v1/audit/lineage/{resource_id}``."""
        return {
            "resource": dict(self.resource),
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
        }


UsageRow = tuple[str | None, str | None, str | None, int, datetime | None]
"""(grant_ref, accessor, purpose, accesses, first access time) — the log grouped for one resource."""


def short_ref(ref: str) -> str:
    """A grant or contract id for a label: its head and tail. A grant id is 16 zero bytes and then
    its request's id, so the head alone (``0x00000000…``) was the same for every grant."""
    return ref if len(ref) <= 17 else f"{ref[:10]}…{ref[-6:]}"


def _kind_is(kind: EventKind) -> ColumnElement[bool]:
    """``kind || '' = …``: the resource's indexes drive and the kind only sifts — on the kind's own
    indexes the planner would walk every access in the log (10M events: 4.9 s against 0.08 s for
    one department's resources since a date)."""
    return (LogEntry.kind + "") == kind.value


def node_id(kind: NodeKind, key: str) -> str:
    """Node ids are ``kind:key`` so a party that both provides and accesses stays two nodes."""
    return f"{kind.value}:{key}"


@dataclass
class _Usage:
    count: int = 0
    purposes: set[str] = field(default_factory=set)
    first: datetime | None = None

    def add(self, count: int, purpose: str | None, first: datetime | None) -> None:
        self.count += count
        if purpose:
            self.purposes.add(purpose)
        if first is not None and (self.first is None or first < self.first):
            self.first = first


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class LineageService:
    def __init__(self, *, store: Store) -> None:
        self.store = store

    def graph_for(self, caller: Party, resource_id: str) -> Lineage:
        """:meth:`graph` for a caller: the regulator, the registrar and the resource's provider."""
        resource = self._resource(resource_id)
        if caller.kind not in AUDITORS and caller.id != resource.provider_id:
            raise Forbidden(
                "a resource's lineage is for its provider, the regulator and the registrar",
                code="not_provider",
            )
        return self.graph(resource_id)

    def _resource(self, resource_id: str) -> Resource:
        with self.store.read() as session:
            resource = session.get(Resource, resource_id) or session.scalar(
                select(Resource).where(Resource.code == resource_id)
            )
        if resource is None:
            raise NotFound(f"no resource {resource_id}", code="resource_not_found")
        return resource

    def graph(self, resource_id: str) -> Lineage:
        """The circulation graph of one resource, named by id or catalog code (unchecked: see
        :meth:`graph_for`)."""
        resource = self._resource(resource_id)
        refs = (resource.id, resource.code)
        with self.store.read() as session:
            usage_rows = session.execute(
                select(
                    LogEntry.grant_ref,
                    LogEntry.accessor,
                    LogEntry.purpose,
                    func.count(),
                    func.min(LogEntry.time),
                )
                .where(LogEntry.resource.in_(refs), _kind_is(EventKind.ACCESS))
                .group_by(LogEntry.grant_ref, LogEntry.accessor, LogEntry.purpose)
            ).all()
            denied: dict[str, int] = {
                str(who): int(n)
                for who, n in session.execute(
                    select(LogEntry.accessor, func.count())
                    .where(LogEntry.resource.in_(refs), _kind_is(EventKind.DENIED))
                    .where(LogEntry.accessor.is_not(None))
                    .group_by(LogEntry.accessor)
                )
            }
            grants = list(
                session.scalars(
                    select(ShareRequest)
                    .where(ShareRequest.resource_id == resource.id, ShareRequest.grant_id.is_not(None))
                    .order_by(ShareRequest.created_at)
                )
            )
            usage: list[UsageRow] = [
                (g, a, p, int(n), _aware(t) if t is not None else None) for g, a, p, n, t in usage_rows
            ]
            contract_nodes, contract_edges = self._contract_nodes(session, resource, usage)
            claimed = {n.attrs.get("contract_id") for n in contract_nodes}
            accessors = self._accessors(usage, grants, denied)
            derived_nodes, derived_edges = self._derived_nodes(session, resource, accessors)
            onward_nodes, onward_edges = self._onward(session, resource, usage)
            names = self._names(
                session,
                {resource.provider_id, *accessors, *(g.requester_id for g in grants)},
            )

        provider = node_id(NodeKind.PROVIDER, resource.provider_id)
        nodes = [
            Node(
                provider,
                NodeKind.PROVIDER,
                names.get(resource.provider_id, (resource.provider_id, None))[0],
                {"party_id": resource.provider_id},
            )
        ]
        edges: list[Edge] = []
        per_grant: dict[str, dict[str, _Usage]] = defaultdict(lambda: defaultdict(_Usage))
        direct: dict[str, _Usage] = defaultdict(_Usage)
        for ref, accessor, purpose, count, first in usage:
            if ref in claimed or accessor is None:
                continue
            if ref:
                per_grant[ref][accessor].add(count, purpose, first)
            else:
                direct[accessor].add(count, purpose, first)
        now = datetime.now(UTC)
        known = {g.grant_id for g in grants}
        for g in grants:
            assert g.grant_id is not None
            scope = json.loads(g.scope_json)
            used = per_grant.get(g.grant_id, {})
            nodes.append(
                Node(
                    node_id(NodeKind.GRANT, g.grant_id),
                    NodeKind.GRANT,
                    f"{g.purpose_code} · {short_ref(g.grant_id)}",
                    {
                        "grant_id": g.grant_id,
                        "request_id": g.id,
                        "grantee": g.requester_id,
                        "purpose": g.purpose_code,
                        "mode": scope.get("mode"),
                        "valid_from": scope.get("valid_from"),
                        "valid_until": scope.get("valid_until"),
                        "status": _grant_status(g, scope, now),
                    },
                )
            )
            if g.requester_id not in used:  # the grantee holds it even before any access
                used = {**used, g.requester_id: _Usage()}
            edges += _grant_edges(provider, g.grant_id, used, {g.purpose_code})
        for ref in sorted(set(per_grant) - known - claimed):  # named by an event, unknown here
            nodes.append(
                Node(
                    node_id(NodeKind.GRANT, ref),
                    NodeKind.GRANT,
                    short_ref(ref),
                    {"grant_id": ref, "status": "unknown"},
                )
            )
            edges += _grant_edges(provider, ref, per_grant[ref], set())
        for accessor, u in sorted(direct.items()):
            edges.append(
                Edge(
                    provider,
                    node_id(NodeKind.ACCESSOR, accessor),
                    EdgeKind.ACCESS,
                    u.count,
                    sorted(u.purposes),
                )
            )
        for accessor in sorted(accessors):
            name, kind = names.get(accessor, (accessor, None))
            nodes.append(
                Node(
                    node_id(NodeKind.ACCESSOR, accessor),
                    NodeKind.ACCESSOR,
                    name,
                    {
                        "party_id": accessor,
                        "party_kind": kind,
                        "access_count": accessors[accessor],
                        "denied_count": int(denied.get(accessor, 0)),
                    },
                )
            )
        nodes += contract_nodes + derived_nodes + onward_nodes
        edges += contract_edges + derived_edges + onward_edges
        return Lineage(
            resource={
                "id": resource.id,
                "code": resource.code,
                "name": resource.name,
                "provider_id": resource.provider_id,
            },
            nodes=nodes,
            edges=edges,
        )

    # -- branches -----------------------------------------------------------------------------------
    @staticmethod
    def _accessors(
        usage: Iterable[UsageRow],
        grants: Iterable[ShareRequest],
        denied: dict[str, int],
    ) -> dict[str, int]:
        """Every party on the accessing side: who accessed, who holds a grant, who was refused."""
        counts: dict[str, int] = defaultdict(int)
        for _ref, accessor, _purpose, count, _first in usage:
            if accessor is not None:
                counts[accessor] += count
        for g in grants:
            counts.setdefault(g.requester_id, 0)
        for accessor in denied:
            counts.setdefault(accessor, 0)
        return dict(counts)

    def _contract_nodes(
        self,
        session: Session,
        resource: Resource,
        usage: list[UsageRow],
    ) -> tuple[list[Node], list[Edge]]:
        """Open contracts (契约式开放 / 依申请开放) that name this resource, as ``contract`` nodes
        (attribute ``contract_id``) with an edge from the provider and one to each accessor under the
        contract; accesses whose ``grant_ref`` is such a contract are drawn on its branch."""
        contracts = list(
            session.scalars(
                select(OpenContract)
                .where(OpenContract.resources_json.contains(f'"{resource.id}"'))
                .order_by(OpenContract.created_at)
            )
        )
        nodes: list[Node] = []
        edges: list[Edge] = []
        provider = node_id(NodeKind.PROVIDER, resource.provider_id)
        for c in contracts:
            cid = node_id(NodeKind.CONTRACT, c.id)
            purposes = json.loads(c.purposes_json)
            nodes.append(
                Node(
                    cid,
                    NodeKind.CONTRACT,
                    f"{c.kind.value} · {purposes[0]} · {short_ref(c.id)}",
                    {
                        "contract_id": c.id,
                        "contract_kind": c.kind.value,
                        "enterprise": c.enterprise_id,
                        "operator": c.operator_id,
                        "purposes": purposes,
                        "status": c.status.value,
                    },
                )
            )
            total = _Usage()
            per: dict[str, _Usage] = defaultdict(_Usage)
            for ref, accessor, purpose, count, first in usage:
                if ref == c.id and accessor is not None:
                    per[accessor].add(count, purpose, first)
                    total.add(count, purpose, first)
            for accessor, u in sorted(per.items()):
                edges.append(
                    Edge(
                        cid,
                        node_id(NodeKind.ACCESSOR, accessor),
                        EdgeKind.ACCESS,
                        u.count,
                        sorted(u.purposes),
                    )
                )
            edges.append(
                Edge(provider, cid, EdgeKind.CONTRACT, total.count, sorted(set(purposes) | total.purposes))
            )
        return nodes, edges

    def _derived_nodes(
        self, session: Session, resource: Resource, accessors: dict[str, int]
    ) -> tuple[list[Node], list[Edge]]:
        """Derived products declared from accesses of this resource (the contract's obligation
        "derived products declared"), as ``derived_product`` nodes with an edge from the enterprise
        that declared each (count: its input accesses)."""
        products = session.scalars(
            select(DerivedProduct)
            .where(DerivedProduct.resources_json.contains(f'"{resource.id}"'))
            .order_by(DerivedProduct.created_at)
        )
        nodes: list[Node] = []
        edges: list[Edge] = []
        for d in products:
            if d.enterprise_id not in accessors:
                continue
            inputs = json.loads(d.inputs_json)
            did = node_id(NodeKind.DERIVED_PRODUCT, d.id)
            nodes.append(
                Node(
                    did,
                    NodeKind.DERIVED_PRODUCT,
                    d.name,
                    {
                        "declaration_id": d.id,
                        "contract_id": d.contract_id,
                        "purpose": d.purpose,
                        "release_mode": d.release_mode.value,
                        "log_index": d.log_index,
                        "inputs": inputs,
                    },
                )
            )
            edges.append(
                Edge(
                    node_id(NodeKind.ACCESSOR, d.enterprise_id),
                    did,
                    EdgeKind.DERIVED,
                    len(inputs),
                    [d.purpose],
                )
            )
        return nodes, edges

    def _onward(
        self,
        session: Session,
        resource: Resource,
        usage: list[UsageRow],
    ) -> tuple[list[Node], list[Edge]]:
        """Onward shares: resources an accessor provides, accessed by others from its first access of
        this resource on (see the module docstring for what this does and does not show) — for the
        :data:`ONWARD_ACCESSORS` accessors that took the most: each costs a scan of its own
        resources' later accesses, and a hot resource is taken by nearly every department."""
        first: dict[str, datetime] = {}
        taken: dict[str, int] = defaultdict(int)
        for _ref, accessor, _purpose, count, when in usage:
            if accessor is None or when is None:
                continue
            taken[accessor] += count
            if accessor not in first or when < first[accessor]:
                first[accessor] = when
        top = sorted(first, key=lambda a: (-taken[a], a))[:ONWARD_ACCESSORS]
        first = {a: first[a] for a in top}
        if not first:
            return [], []
        provided: dict[str, list[Resource]] = defaultdict(list)
        for r in session.scalars(
            select(Resource).where(Resource.provider_id.in_(first), Resource.id != resource.id)
        ):
            provided[r.provider_id].append(r)
        nodes: list[Node] = []
        edges: list[Edge] = []
        for accessor in sorted(provided):
            own = provided[accessor]
            by_ref = {ref: r for r in own for ref in (r.code, r.id)}
            rows = session.execute(
                select(LogEntry.resource, LogEntry.purpose, func.count())
                .where(
                    LogEntry.resource.in_(list(by_ref)),
                    _kind_is(EventKind.ACCESS),
                    LogEntry.time >= first[accessor],
                    LogEntry.accessor != accessor,
                )
                .group_by(LogEntry.resource, LogEntry.purpose)
            ).all()
            onward: dict[str, _Usage] = defaultdict(_Usage)
            for ref, purpose, count in rows:
                if ref is not None:
                    onward[by_ref[ref].id].add(int(count), purpose, None)
            for rid in sorted(onward):
                r = next(x for x in own if x.id == rid)
                target = node_id(NodeKind.ONWARD_RESOURCE, rid)
                if all(n.id != target for n in nodes):
                    nodes.append(
                        Node(
                            target,
                            NodeKind.ONWARD_RESOURCE,
                            r.name,
                            {
                                "resource_id": r.id,
                                "code": r.code,
                                "provider_id": r.provider_id,
                                "access_count": onward[rid].count,
                            },
                        )
                    )
                edges.append(
                    Edge(
                        node_id(NodeKind.ACCESSOR, accessor),
                        target,
                        EdgeKind.ONWARD,
                        onward[rid].count,
                        sorted(onward[rid].purposes),
                    )
                )
        return nodes, edges

    @staticmethod
    def _names(session: Session, ids: set[str]) -> dict[str, tuple[str, str | None]]:
        rows = session.execute(select(Party.id, Party.name, Party.kind).where(Party.id.in_(ids))).all()
        return {pid: (name, kind.value if kind is not None else None) for pid, name, kind in rows}


def _grant_edges(provider: str, grant: str, used: dict[str, _Usage], purposes: set[str]) -> list[Edge]:
    """A grant's branch: one ``access`` edge to each party that used it (the grantee's even at 0),
    and the provider's ``grant`` edge carrying their total and every purpose seen on it."""
    source = node_id(NodeKind.GRANT, grant)
    edges = []
    count = 0
    for accessor, u in used.items():
        count += u.count
        purposes = purposes | u.purposes
        edges.append(
            Edge(source, node_id(NodeKind.ACCESSOR, accessor), EdgeKind.ACCESS, u.count, sorted(u.purposes))
        )
    return [*edges, Edge(provider, source, EdgeKind.GRANT, count, sorted(purposes))]


def _grant_status(g: ShareRequest, scope: dict[str, Any], now: datetime) -> str:
    """active / revoked / expired from the share records (the chain's ``grantOf`` is the authority;
    the records follow it after each transaction)."""
    if g.revoked_tx:
        return "revoked"
    until = scope.get("valid_until")
    if until and datetime.fromisoformat(until.replace("Z", "+00:00")) <= now:
        return "expired"
    return "active"
