"""A scan as the outside sees it: the body of ``GET /v1/scans/{id}`` and of ``growbin scan``.

One schema for both faces, defined next to the record it describes
(:meth:`growbin.scan.records.Scan.as_dict`), so the API and the command line cannot drift
apart and neither imports the other.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class StepState(BaseModel):
    """One pipeline step: ``state`` (pending, started, done, failed), and when it ran, where,
    and ``seconds`` it took once done."""

    model_config = ConfigDict(extra="allow")

    state: str


class ScanResult(BaseModel):
    """What the pipeline decided. ``providers.vision`` says which provider and model
    classified (``offline`` true when no real model looked), ``evidence`` what decided, and
    ``candidates`` the items an unsure classifier could not tell apart (best first)."""

    model_config = ConfigDict(extra="allow")

    category: str | None = None
    item: str | None = Field(default=None, description="the rule id, e.g. can, pet_bottle")
    state: str | None = None
    confidence: float | None = Field(
        default=None, description="0 to 1; below 0.5 the classification is unsure"
    )
    disposal: dict[str, Any] | None = Field(
        default=None, description="the rule applied: bin, steps, rule (not_accepted, notes)"
    )
    guidance: str | None = Field(default=None, description="the text for the user, one line each")
    providers: dict[str, Any] | None = None


class ScanView(BaseModel):
    id: str
    status: Literal["queued", "running", "done", "failed", "refused"]
    steps: dict[str, StepState]
    result: ScanResult | None = None
    error: str | None = None
    created_at: str | None = None
    completed_at: str | None = None


class IntakeRefusal(BaseModel):
    """A photo refused before anything was queued: the body the API answers with 413/415/422."""

    error: str = Field(description="the intake code: not_an_image, too_large, truncated, ...")
    detail: str = Field(description="what is wrong with the photo, and the fix")


class PhotoReport(BaseModel):
    """One photo given to ``growbin scan --format json``: exactly one of ``scan`` (accepted:
    the scan as the API returns it) and ``refused`` (refused at intake) is set."""

    photo: str = Field(description="the path as found on the command line or in the folder")
    scan: ScanView | None = None
    refused: IntakeRefusal | None = None
