"""The image URL guard: what it refuses, and that it connects only to the address it checked.

No test connects anywhere but 127.0.0.1: names are resolved by an injected resolver, refused
addresses are refused before any connection, and the few real requests go to a local server
(127.0.0.1 is made fetchable for them with a trusted network).
"""

from __future__ import annotations

import asyncio
import ipaddress

import httpx
import pytest
from tests.unit.api.local_http import LocalFiles

from growbin.api.addresses import refusal
from growbin.api.fetch import FetchError, FetchPolicy, ImageFetcher

REFUSED = [
    "127.0.0.1",
    "127.8.9.10",
    "0.0.0.0",  # noqa: S104 - an address to refuse, not to bind
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "169.254.170.2",
    "169.254.1.1",
    "100.64.0.1",
    "100.100.100.200",
    "192.0.0.192",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.10",
    "198.18.0.1",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",
    "ff02::1",
    "fec0::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::7f00:1",
    "2002:7f00:1::1",
    "2002:a9fe:a9fe::1",
    "2001:db8::1",
]
ALLOWED = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_every_inward_or_special_address_is_refused(address):
    assert refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address):
    assert refusal(ipaddress.ip_address(address)) is None


def test_a_trusted_network_is_allowed_but_metadata_never_is():
    trusted = [ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("10.0.0.0/8")]
    assert refusal(ipaddress.ip_address("10.1.2.3"), trusted) is None
    assert refusal(ipaddress.ip_address("169.254.169.254"), trusted) == "a cloud metadata address"
    assert refusal(ipaddress.ip_address("fd00:ec2::254"), trusted) is not None


class Resolver:
    """Answers from a table, or a list of successive answers; counts lookups."""

    def __init__(self, table: dict[str, list[list[str]]]) -> None:
        self.table = table
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        answers = self.table.get(host)
        if not answers:
            raise OSError(f"unknown host {host}")
        return answers.pop(0) if len(answers) > 1 else answers[0]


def fetcher(resolver=None, **policy) -> ImageFetcher:
    options = {"max_bytes": 1000, "timeout": 5.0, "trusted_networks": ["127.0.0.1/32"]}
    return ImageFetcher(FetchPolicy.build(**{**options, **policy}), resolver or Resolver({}))


def fetch(f: ImageFetcher, url: str):
    return asyncio.run(f.fetch(url))


def refused(f: ImageFetcher, url: str) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch(f, url)
    return info.value


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/a.jpg",
        "gopher://example.com:70/",
        "dict://127.0.0.1:6379/info",
        "data:image/png;base64,AAAA",
        "http://user:pw@example.com/a.jpg",
        "not a url at all",
        "http:///nohost",
    ],
)
def test_urls_that_are_not_plain_http_or_https_are_refused(url):
    resolver = Resolver({})
    assert refused(fetcher(resolver), url).code == "url_refused"
    assert resolver.calls == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.1/a.jpg",
        "http://[::1]/a.jpg",
        "http://[::ffff:7f00:1]:8080/a.jpg",
        "http://0.0.0.0:5672/",
        "https://100.64.1.1/",
    ],
)
def test_addresses_written_in_the_url_are_refused_without_a_lookup(url):
    resolver = Resolver({})
    error = refused(fetcher(resolver, trusted_networks=[]), url)
    assert error.code == "url_refused"
    assert "not fetched" in str(error)
    assert resolver.calls == []


def test_a_name_that_resolves_inward_is_refused_even_if_one_answer_is_public():
    resolver = Resolver(
        {
            "internal.example": [["10.1.2.3"]],
            "mixed.example": [["93.184.216.34", "127.0.0.1"]],
            "meta.example": [["169.254.169.254"]],
        }
    )
    f = fetcher(resolver, trusted_networks=[])
    for host in ("internal.example", "mixed.example", "meta.example"):
        error = refused(f, f"http://{host}/a.jpg")
        assert error.code == "url_refused"
        assert host in str(error)


def test_an_allow_list_refuses_every_other_host_before_resolving():
    resolver = Resolver({"images.example": [["127.0.0.1"]]})
    f = fetcher(resolver, allowed_hosts=["images.example"])
    assert refused(f, "http://other.example/a.jpg").code == "url_refused"
    assert resolver.calls == []


def test_the_request_goes_to_the_checked_address_so_a_second_dns_answer_cannot_switch_it():
    # a rebinding name: first a fetchable address, then (to anyone asking again) an inward one
    resolver = Resolver({"images.example": [["127.0.0.1"], ["10.0.0.7"]]})
    with LocalFiles({"/cat.jpg": b"JPEGDATA"}) as server:
        got = fetch(fetcher(resolver), server.url("/cat.jpg", host="images.example"))
    assert got.data == b"JPEGDATA"
    assert got.filename == "cat.jpg"
    assert resolver.calls == ["images.example"]  # resolved once, then pinned
    assert server.hosts == [f"images.example:{server.port}"]  # the name travels as Host


def test_https_is_sent_to_the_pinned_address_with_the_name_as_tls_server_name():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, stream=httpx.ByteStream(b"img"))

    f = ImageFetcher(
        FetchPolicy.build(max_bytes=100),
        Resolver({"cdn.example": [["93.184.216.34"]]}),
        transport=httpx.MockTransport(handler),
    )
    assert asyncio.run(f.fetch("https://cdn.example/p/a.png?x=1")).data == b"img"
    (request,) = seen
    assert request.url.host == "93.184.216.34"
    assert request.url.path == "/p/a.png"
    assert request.headers["host"] == "cdn.example"
    assert request.extensions["sni_hostname"] == "cdn.example"


def test_redirects_are_followed_by_hand_and_each_hop_is_checked():
    resolver = Resolver({"images.example": [["127.0.0.1"]], "inward.example": [["::1"]]})
    with LocalFiles(
        {"/final.jpg": b"OK"},
        redirects={
            "/a": "/b",
            "/b": "http://images.example:{port}/final.jpg",
            "/to-metadata": "http://169.254.169.254/latest/meta-data/iam",
            "/to-loopback-name": "http://inward.example/x",
            "/loop": "/loop",
        },
    ) as server:
        server.redirects["/b"] = server.redirects["/b"].format(port=server.port)
        f = fetcher(resolver)
        assert fetch(f, server.url("/a")).data == b"OK"
        metadata = refused(f, server.url("/to-metadata"))
        assert "metadata" in str(metadata)
        assert "inward.example resolves to ::1" in str(refused(f, server.url("/to-loopback-name")))
        assert "redirected more than 3" in str(refused(f, server.url("/loop")))
    assert "/latest/meta-data/iam" not in server.paths


def test_a_body_over_the_cap_is_refused_whether_or_not_its_length_is_declared():
    big = b"x" * 5000
    with LocalFiles({"/sized": big, "/unsized": big}, unsized=frozenset({"/unsized"})) as server:
        f = fetcher()
        for path in ("/sized", "/unsized"):
            assert refused(f, server.url(path)).code == "too_large"


def test_a_slow_server_is_cut_off_at_the_timeout():
    with LocalFiles({"/slow": b"late"}, slow={"/slow": 3.0}) as server:
        error = refused(fetcher(timeout=0.5), server.url("/slow"))
    assert error.code == "url_timeout"


def test_an_error_status_is_reported_as_a_failed_fetch():
    with LocalFiles({}) as server:
        error = refused(fetcher(), server.url("/missing.jpg"))
    assert (error.code, "HTTP 404" in str(error)) == ("url_fetch_failed", True)
