"""`GET /`: what answers here, for a person or a script that finds the address (no key needed).

The service name, its version and where to go next; nothing about the deployment (no
hostnames, topology, dependencies or counts): an unauthenticated caller learns only what the
OpenAPI document already tells.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

router = APIRouter(tags=["health"])

SERVICE = "growbin"
LINKS = {
    "docs": "/docs",
    "openapi": "/openapi.json",
    "health": "/healthz",
    "ready": "/readyz",
    "scans": "/v1/scans",
    "console": "/console",
}


class ServiceInfo(BaseModel):
    service: str
    version: str
    links: dict[str, str]


@router.get("/", response_model=ServiceInfo)
def root(request: Request) -> ServiceInfo:
    """The service name, its version and links to the docs, health checks and the scans API."""
    return ServiceInfo(service=SERVICE, version=str(request.app.version), links=dict(LINKS))
