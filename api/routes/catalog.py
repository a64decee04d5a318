"""Purposes vocabulary (and, with the share workflow, the catalog)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter

from api.routing import Route
from ledger import purposes

router = APIRouter(tags=["catalog"], route_class=Route)


@router.get("/v1/purposes", summary="The purpose vocabulary with zh-CN/English labels and DPV IRIs")
def list_purposes() -> list[dict[str, Any]]:
    return [asdict(p) for p in purposes.vocabulary()]
