"""Provider failures, sorted the way the task base needs: retry (transient) or dead-letter (fatal).

Every message names the provider, the method and URL (passwords masked, query dropped; never an
API key or a token: those travel in headers only) and the status, and says what to do about it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from growbin.errors import FatalTaskError, TransientTaskError
from growbin.settings import mask_url


def public_url(url: str) -> str:
    """The URL as it may appear in logs and dead letters: no password, no query string.

    The query holds user data (a map search carries the user's coordinates), not routing.
    """
    parts = urlsplit(mask_url(url))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _rebuild(cls: type[BaseException], state: dict[str, Any], args: tuple[Any, ...]) -> Any:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class ProviderError(Exception):
    """Any provider failure (catch this for all of them); the classes below add retry or fatal."""

    provider: str
    method: str
    url: str
    status: int | None
    reason: str

    def _fill(self, provider: str, method: str, url: str, status: int | None, reason: str) -> None:
        self.provider = provider
        self.method = method
        self.url = public_url(url)
        self.status = status
        self.reason = reason

    def _where(self) -> str:
        answered = f" answered {self.status}" if self.status is not None else " failed"
        return f"{self.provider}{answered} at {self.method} {self.url}"

    # Celery pickles exceptions into results and dead letters; the default reduce would call
    # __init__ with the message alone, which these signatures do not accept.
    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), dict(self.__dict__), self.args))


class ProviderUnavailableError(ProviderError, TransientTaskError):
    """A 5xx, a 429, a timeout or a dropped connection: worth a retry after ``retry_after`` s."""

    def __init__(
        self,
        provider: str,
        method: str,
        url: str,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self._fill(provider, method, url, status, reason)
        self.retry_after = retry_after
        wait = f" (Retry-After: {retry_after:g}s)" if retry_after is not None else ""
        super().__init__(
            f"{self._where()}{wait}: {reason}. This is retried; if it persists, check the "
            f"provider's status page and your quota, or switch to the offline providers."
        )


class ProviderRateLimitedError(ProviderUnavailableError):
    """HTTP 429: the provider wants us to slow down (see ``retry_after``)."""


class ProviderTimeoutError(ProviderUnavailableError):
    """No answer within the client timeout."""


class ProviderOutputError(ProviderError, TransientTaskError):
    """The provider answered 2xx but the content is not what we asked for.

    Retryable: language models answer differently on a second try, and a compatible server
    that is mid-deploy may send a broken body once.
    """

    def __init__(self, provider: str, method: str, url: str, reason: str) -> None:
        self._fill(provider, method, url, None, reason)
        super().__init__(
            f"{provider} returned unusable output at {method} {self.url}: {reason}. This is "
            f"retried; if it persists, check that the model supports structured outputs."
        )


class ProviderRejectedError(ProviderError, FatalTaskError):
    """A 4xx other than 429: the same request will be refused again, so it is dead-lettered."""

    def __init__(
        self, provider: str, method: str, url: str, reason: str, *, status: int, fix: str
    ) -> None:
        self._fill(provider, method, url, status, reason)
        self.fix = fix
        super().__init__(f"{self._where()}: {reason}. Fix: {fix}.")


class ProviderRefusedContentError(ProviderError, FatalTaskError):
    """The model declined to answer (a safety refusal): asking again costs money, not results."""

    def __init__(self, provider: str, method: str, url: str, reason: str) -> None:
        self._fill(provider, method, url, None, reason)
        super().__init__(
            f"{provider} refused to answer at {method} {self.url}: {reason}. Fix: check the "
            f"image, or classify it with the offline provider."
        )


class InvalidTokenError(ProviderRejectedError):
    """HTTP 401 from an OAuth userinfo endpoint: the user's access token is invalid or expired."""


# The name the issue uses.
InvalidToken = InvalidTokenError


class InvalidImageError(FatalTaskError):
    """The bytes handed to a classifier are not an image we can decode."""
