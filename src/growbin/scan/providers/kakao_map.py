"""Nearby recycling points: the Kakao Local keyword search, and an offline fixture finder.

Kakao's coordinates are x = longitude, y = latitude (WGS84), and its ``distance`` is a string
of metres, empty unless x and y were sent. Both finders return the same models.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from growbin.scan.providers.errors import ProviderOutputError, public_url
from growbin.scan.providers.http import MAX_REASON_CHARS, json_body, send

KEYWORD_PATH = "/v2/local/search/keyword.json"
DEFAULT_QUERY = "재활용센터"
MAX_RADIUS_M = 20_000  # Kakao's limit
MAX_PAGE_SIZE = 15  # Kakao's limit
MAX_PAGE = 45  # Kakao's limit
EARTH_RADIUS_M = 6_371_008.8


class Place(BaseModel):
    """One search result (a Kakao ``document``)."""

    id: str = ""
    place_name: str
    category_name: str = ""
    address_name: str = ""
    road_address_name: str = ""
    phone: str = ""
    x: float = Field(description="longitude")
    y: float = Field(description="latitude")
    distance: int | None = Field(default=None, description="metres from the search centre")
    place_url: str = ""

    @field_validator("distance", mode="before")
    @classmethod
    def _empty_distance(cls, value: Any) -> Any:
        return None if value in ("", None) else value


class SearchMeta(BaseModel):
    total_count: int = 0
    pageable_count: int = 0
    is_end: bool = True


class PlaceSearch(BaseModel):
    """Results nearest first. ``offline`` is True when they came from the fixture."""

    model_config = ConfigDict(frozen=True)

    documents: list[Place]
    meta: SearchMeta
    provider: str
    offline: bool


@runtime_checkable
class BinFinder(Protocol):
    def nearby(
        self, *, x: float, y: float, radius: int = 2000, query: str = DEFAULT_QUERY, size: int = 15
    ) -> PlaceSearch:
        """Recycling points within ``radius`` metres of (x = longitude, y = latitude)."""
        ...


def haversine_m(x1: float, y1: float, x2: float, y2: float) -> float:
    """Great-circle distance in metres between two (longitude, latitude) points."""
    lon1, lat1, lon2, lat2 = map(math.radians, (x1, y1, x2, y2))
    a = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def _check_search(x: float, y: float, radius: int, page: int, size: int) -> None:
    if not (-180 <= x <= 180 and -90 <= y <= 90):
        raise ValueError(f"x={x}, y={y} is not a (longitude, latitude) pair; x is the longitude")
    if not 0 <= radius <= MAX_RADIUS_M:
        raise ValueError(f"radius={radius} m is outside 0..{MAX_RADIUS_M} (Kakao's limit)")
    if not 1 <= size <= MAX_PAGE_SIZE or not 1 <= page <= MAX_PAGE:
        raise ValueError(f"page={page}, size={size}: page is 1..{MAX_PAGE}, size 1..15")


class KakaoLocalClient:
    """A :class:`BinFinder` over the Kakao Local REST API (keyword search).

    ``api_key`` is the REST API key, sent as ``Authorization: KakaoAK <key>``.
    """

    provider = "kakao"

    def __init__(
        self,
        api_key: SecretStr | str,
        *,
        base_url: str = "https://dapi.kakao.com",
        timeout: float = 5.0,
        http: httpx.Client | None = None,
    ) -> None:
        self._key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self.base_url = base_url.rstrip("/")
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=timeout)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> KakaoLocalClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KakaoLocalClient(base_url={public_url(self.base_url)!r})"

    def search_keyword(
        self,
        query: str,
        *,
        x: float,
        y: float,
        radius: int = 2000,
        page: int = 1,
        size: int = 15,
        sort: Literal["distance", "accuracy"] = "distance",
    ) -> PlaceSearch:
        if not query.strip():
            raise ValueError("query is empty; Kakao's keyword search needs a keyword")
        _check_search(x, y, radius, page, size)
        url = self.base_url + KEYWORD_PATH
        key = self._key.get_secret_value()
        response = send(
            self._http,
            "GET",
            url,
            provider=self.provider,
            secrets=(key,),
            fixes={401: "check GROWBIN_KAKAO_REST_API_KEY (the REST API key, not the JS key)"},
            headers={"Authorization": f"KakaoAK {key}"},
            params={
                "query": query,
                "x": f"{x:.6f}",
                "y": f"{y:.6f}",
                "radius": radius,
                "page": page,
                "size": size,
                "sort": sort,
            },
        )
        body = json_body(response, provider=self.provider)
        try:
            documents = [Place.model_validate(doc) for doc in body["documents"]]
            meta = SearchMeta.model_validate(body.get("meta") or {})
        except (KeyError, TypeError, AttributeError, ValidationError) as exc:
            reason = f"the body is not a keyword search result ({type(exc).__name__}: {exc})"
            raise ProviderOutputError(self.provider, "GET", url, reason[:MAX_REASON_CHARS]) from exc
        return PlaceSearch(documents=documents, meta=meta, provider=self.provider, offline=False)

    def nearby(
        self, *, x: float, y: float, radius: int = 2000, query: str = DEFAULT_QUERY, size: int = 15
    ) -> PlaceSearch:
        return self.search_keyword(query, x=x, y=y, radius=radius, size=size)


def load_fixture(path: Path | None = None) -> list[dict[str, Any]]:
    """The fixture's documents (Kakao's shape: strings for x and y)."""
    if path is None:
        text = (
            resources.files("growbin.scan.providers")
            .joinpath("data/bins_fixture.json")
            .read_text(encoding="utf-8")
        )
    else:
        text = path.read_text(encoding="utf-8")
    documents = json.loads(text)["documents"]
    if not isinstance(documents, list):
        raise ValueError(f"{path or 'bins_fixture.json'}: 'documents' must be a list")
    return documents


def search_documents(
    documents: Sequence[dict[str, Any]],
    *,
    x: float,
    y: float,
    radius: int,
    page: int = 1,
    size: int = 15,
) -> tuple[list[dict[str, Any]], SearchMeta]:
    """Kakao's paging over fixture documents: within ``radius``, nearest first.

    Shared by :class:`OfflineBinFinder` and the fake Kakao server, so both agree.
    """
    _check_search(x, y, radius, page, size)
    found = []
    for doc in documents:
        metres = haversine_m(x, y, float(doc["x"]), float(doc["y"]))
        if metres <= radius:
            found.append({**doc, "distance": str(round(metres))})
    found.sort(key=lambda doc: int(doc["distance"]))
    start = (page - 1) * size
    meta = SearchMeta(
        total_count=len(found), pageable_count=len(found), is_end=start + size >= len(found)
    )
    return found[start : start + size], meta


class OfflineBinFinder:
    """A :class:`BinFinder` over the fixture shipped with the package: no network, no key.

    The keyword is ignored (every fixture point is a recycling point); results are honest
    about being fixture data (``offline=True``).
    """

    provider = "offline"

    def __init__(self, fixture: Path | None = None) -> None:
        self._documents = load_fixture(fixture)

    def nearby(
        self, *, x: float, y: float, radius: int = 2000, query: str = DEFAULT_QUERY, size: int = 15
    ) -> PlaceSearch:
        documents, meta = search_documents(self._documents, x=x, y=y, radius=radius, size=size)
        return PlaceSearch(
            documents=[Place.model_validate(doc) for doc in documents],
            meta=meta,
            provider=self.provider,
            offline=True,
        )
