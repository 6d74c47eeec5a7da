"""A fake Kakao server: Local keyword search and the OAuth userinfo endpoint.

- ``GET /v2/local/search/keyword.json`` with ``Authorization: KakaoAK <key>`` searches the
  package's bins fixture around x (longitude), y (latitude) within ``radius``, nearest first,
  paged by ``page`` and ``size``, in Kakao's shape (``documents`` with string x, y, distance).
- ``GET /v2/user/me`` with ``Authorization: Bearer <token>`` answers the user registered for
  that token (:meth:`FakeKakao.add_user`), or 401 with Kakao's ``{"msg", "code": -401}``.

Real Kakao serves these from two hosts (dapi and kapi); one fake serves both.

Run by hand: ``python -m growbin.fakes.kakao_server --port 8090``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from growbin.fakes.base import FakeRequest, FakeResponse, FakeServer, Mode, run_cli
from growbin.scan.providers.kakao_map import KEYWORD_PATH, load_fixture, search_documents

USERINFO_PATH = "/v2/user/me"
DEFAULT_USER_TOKEN = "test-user-token"  # noqa: S105 - the fake's own token, not a secret


class FakeKakao(FakeServer):
    """``with FakeKakao() as fake: KakaoLocalClient(fake.api_key, base_url=fake.base_url)``."""

    name = "kakao"

    def __init__(self, *, api_key: str = "test-kakao-key", **options: Any) -> None:
        super().__init__(api_key=api_key, **options)
        self.documents = load_fixture()
        self._users: dict[str, dict[str, Any]] = {}
        self.add_user(DEFAULT_USER_TOKEN, 4242, email="user@example.com")

    @property
    def base_url(self) -> str:
        return self.url

    @property
    def userinfo_url(self) -> str:
        return self.url + USERINFO_PATH

    def describe(self) -> str:
        return (
            f"base_url {self.base_url}, userinfo {self.userinfo_url} "
            f"(api key {self.api_key!r}, user token {DEFAULT_USER_TOKEN!r})"
        )

    def add_user(
        self, token: str, user_id: int, *, email: str | None = None, verified: bool = True
    ) -> None:
        """Make ``token`` a valid access token for this user."""
        account: dict[str, Any] = {"has_email": email is not None}
        if email is not None:
            account.update(
                email_needs_agreement=False,
                is_email_valid=True,
                is_email_verified=verified,
                email=email,
            )
        user = {"id": user_id, "connected_at": "2025-01-01T00:00:00Z", "kakao_account": account}
        with self._lock:
            self._users[token] = user

    def authorize(self, request: FakeRequest) -> FakeResponse | None:
        header = request.headers.get("Authorization") or ""
        if request.path == KEYWORD_PATH and header != f"KakaoAK {self.api_key}":
            # Kakao's real message echoes the key; the client must redact it, so we do too.
            message = f"wrong appKey({header.removeprefix('KakaoAK ')}) format"
            return FakeResponse(401, {"errorType": "AccessDeniedError", "message": message})
        if request.path == USERINFO_PATH:
            token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
            with self._lock:
                known = token in self._users
            if not known:
                return FakeResponse(401, {"msg": "this access token does not exist", "code": -401})
        return None

    def error_body(self, status: int) -> Any:
        if status == 429:
            return {"errorType": "RateLimitExceeded", "message": "API limit has been exceeded."}
        if status >= 500:
            return {"errorType": "InternalServerError", "message": "internal server error"}
        return {"errorType": "InvalidArgument", "message": f"injected error {status}"}

    def route(self, request: FakeRequest, mode: Mode) -> FakeResponse:
        if request.method != "GET" or request.path not in (KEYWORD_PATH, USERINFO_PATH):
            return FakeResponse(404, {"errorType": "NotFound", "message": request.path})
        if mode == "malformed":
            return FakeResponse(200, b"<html><body>upstream hiccup</body></html>")
        if mode == "wrong_schema":
            return FakeResponse(200, {"docs": [], "paging": {}})
        if request.path == USERINFO_PATH:
            token = str(request.headers.get("Authorization", "")).removeprefix("Bearer ")
            with self._lock:
                return FakeResponse(200, self._users[token])
        return self._keyword(request.query)

    def _keyword(self, query: dict[str, str]) -> FakeResponse:
        keyword = query.get("query", "").strip()
        if not keyword:
            return _bad("MissingParameter", "query parameter required")
        try:
            x, y = float(query["x"]), float(query["y"])
            radius = int(query.get("radius", "20000"))
            page, size = int(query.get("page", "1")), int(query.get("size", "15"))
            documents, meta = search_documents(
                self.documents, x=x, y=y, radius=radius, page=page, size=size
            )
        except (KeyError, ValueError) as exc:
            return _bad("InvalidArgument", str(exc))
        body = {
            "documents": documents,
            "meta": {
                **meta.model_dump(),
                "same_name": {"region": [], "keyword": keyword, "selected_region": ""},
            },
        }
        return FakeResponse(200, body)


def _bad(kind: str, message: str) -> FakeResponse:
    return FakeResponse(400, {"errorType": kind, "message": message})


def main(argv: Sequence[str] | None = None) -> None:
    run_cli(FakeKakao, argv, default_port=8090)


if __name__ == "__main__":
    main()
