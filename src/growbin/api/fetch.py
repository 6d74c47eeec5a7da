"""Fetching an image by URL without letting the caller reach what the server can reach (SSRF).

Every hop is checked before anything is sent: the scheme (http or https), the host (against an
optional allow-list), and every address the name resolves to (loopback, private, link-local,
multicast, reserved, unspecified, CGNAT, cloud metadata, and IPv4 hidden inside IPv6). The
request then goes to the address that was checked, not to the name: resolving again at connect
time would let a DNS answer with a short TTL switch to 127.0.0.1 in between (DNS rebinding).
The name still travels in the Host header and, for https, as the TLS server name, so virtual
hosts and certificate checks work as usual. Redirects are followed by hand, each hop checked
again; the body is counted while it streams and cut off at the size cap.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin

import anyio
import httpx

from growbin.api.addresses import IPAddress, IPNetwork, refusal
from growbin.errors import GrowbinError

Resolver = Callable[[str, int], Sequence[str]]

SCHEMES = {"http": 80, "https": 443}
REDIRECTS = {301, 302, 303, 307, 308}


class FetchError(GrowbinError):
    """The image URL was refused or could not be fetched. ``code`` is stable for clients."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class FetchPolicy:
    max_bytes: int
    timeout: float = 10.0
    max_redirects: int = 3
    allowed_hosts: tuple[str, ...] = ()
    trusted_networks: tuple[IPNetwork, ...] = field(default=())

    @classmethod
    def build(
        cls,
        *,
        max_bytes: int,
        timeout: float = 10.0,
        max_redirects: int = 3,
        allowed_hosts: Sequence[str] = (),
        trusted_networks: Sequence[str] = (),
    ) -> FetchPolicy:
        return cls(
            max_bytes=max_bytes,
            timeout=timeout,
            max_redirects=max_redirects,
            allowed_hosts=tuple(h.lower().rstrip(".") for h in allowed_hosts),
            trusted_networks=tuple(ipaddress.ip_network(n, strict=False) for n in trusted_networks),
        )


@dataclass(frozen=True)
class Target:
    """One checked hop: the URL as given, and the address the request will go to."""

    url: httpx.URL
    host: str
    port: int
    address: IPAddress

    def pinned_url(self) -> httpx.URL:
        return self.url.copy_with(host=str(self.address))

    def host_header(self) -> str:
        default = SCHEMES[self.url.scheme]
        return self.host if self.port == default else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class FetchedImage:
    data: bytes
    filename: str | None
    url: str


class ImageFetcher:
    def __init__(
        self,
        policy: FetchPolicy,
        resolver: Resolver = system_resolver,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.transport = transport  # tests replace the network

    async def fetch(self, url: str) -> FetchedImage:
        try:
            async with asyncio.timeout(self.policy.timeout):
                return await self._fetch(url)
        except TimeoutError:
            raise FetchError(
                "url_timeout",
                f"fetching the image took longer than {self.policy.timeout:g} s: "
                "use a faster host or upload the file",
            ) from None

    async def _fetch(self, url: str) -> FetchedImage:
        current = url
        for _ in range(self.policy.max_redirects + 1):
            target = await self.check(current)
            async with httpx.AsyncClient(
                trust_env=False,  # an HTTP_PROXY variable must not reroute a checked request
                follow_redirects=False,
                timeout=httpx.Timeout(self.policy.timeout),
                transport=self.transport,
            ) as client:
                request = client.build_request(
                    "GET",
                    target.pinned_url(),
                    headers={
                        "Host": target.host_header(),
                        "Accept": "image/*",
                        # the size cap counts raw bytes: a compressed body could expand past it
                        "Accept-Encoding": "identity",
                    },
                    extensions={"sni_hostname": target.host}
                    if target.url.scheme == "https"
                    else {},
                )
                try:
                    response = await client.send(request, stream=True)
                except httpx.HTTPError as exc:
                    raise FetchError(
                        "url_fetch_failed",
                        f"could not fetch {target.host}: {type(exc).__name__}: check the URL",
                    ) from None
                try:
                    if response.status_code in REDIRECTS and "location" in response.headers:
                        current = urljoin(str(target.url), response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise FetchError(
                            "url_fetch_failed",
                            f"the image URL answered HTTP {response.status_code}: "
                            "check that it points at a public image",
                        )
                    data = await self._read(response)
                finally:
                    await response.aclose()
            return FetchedImage(data=data, filename=_filename(target.url), url=str(target.url))
        raise FetchError(
            "url_refused",
            f"the image URL redirected more than {self.policy.max_redirects} times: "
            "give the final address",
        )

    async def check(self, url: str) -> Target:
        """Check one hop (scheme, host, every resolved address) and pick the address to use."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise FetchError("url_refused", f"{url[:200]!r} is not a URL") from None
        if parsed.scheme not in SCHEMES:
            raise FetchError(
                "url_refused",
                f"the scheme {parsed.scheme or '(none)'!r} is not allowed: use http or https",
            )
        if parsed.userinfo:
            raise FetchError("url_refused", "URLs with a user name or password are not fetched")
        host = parsed.raw_host.decode("ascii", "replace").lower().rstrip(".")
        if not host:
            raise FetchError("url_refused", "the URL has no host")
        self._refuse_literal(host)
        if self.policy.allowed_hosts and host not in self.policy.allowed_hosts:
            raise FetchError(
                "url_refused",
                f"the host {host} is not one the API fetches from: "
                f"use {', '.join(self.policy.allowed_hosts)} or upload the file",
            )
        port = parsed.port or SCHEMES[parsed.scheme]
        addresses = await self._resolve(host, port)
        for address in addresses:
            why = refusal(address, self.policy.trusted_networks)
            if why is not None:
                # one bad answer is enough: a name that also points inward is not trusted
                raise FetchError(
                    "url_refused", f"the host {host} resolves to {address}, {why}: not fetched"
                )
        return Target(url=parsed, host=host, port=port, address=addresses[0])

    def _refuse_literal(self, host: str) -> None:
        # an address written in the URL is judged as such, before any allow-list
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return
        why = refusal(literal, self.policy.trusted_networks)
        if why is not None:
            raise FetchError("url_refused", f"the address {literal} is {why}: not fetched")

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            pass
        else:
            return [literal]
        try:
            answers = await anyio.to_thread.run_sync(self.resolver, host, port)
        except OSError as exc:
            raise FetchError(
                "url_fetch_failed", f"the host {host} cannot be resolved ({exc})"
            ) from None
        addresses: list[IPAddress] = []
        for answer in answers:
            try:
                # getaddrinfo may add a zone ("fe80::1%eth0"); the zone does not change the class
                addresses.append(ipaddress.ip_address(answer.split("%", 1)[0]))
            except ValueError:
                raise FetchError(
                    "url_refused", f"the host {host} resolves to {answer!r}, not an address"
                ) from None
        if not addresses:
            raise FetchError("url_fetch_failed", f"the host {host} has no address")
        return addresses

    async def _read(self, response: httpx.Response) -> bytes:
        limit = self.policy.max_bytes
        too_large = FetchError(
            "too_large", f"the image at the URL is larger than {limit} bytes: send a smaller photo"
        )
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise FetchError(
                "url_fetch_failed",
                f"the image URL sent a {encoding}-compressed body: serve the image uncompressed",
            )
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)


def _filename(url: httpx.URL) -> str | None:
    name = unquote(url.path.rsplit("/", 1)[-1])
    cleaned = "".join(ch for ch in name if ch.isprintable())[:255]
    return cleaned or None
