import httpx
import pytest

from growbin.runtime.failures import is_transient
from growbin.scan.providers import (
    BinFinder,
    KakaoLocalClient,
    OfflineBinFinder,
    ProviderOutputError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from growbin.scan.providers.kakao_map import haversine_m

CITY_HALL = {"x": 126.9780, "y": 37.5665}  # longitude, latitude


def test_both_finders_satisfy_the_bin_finder_protocol():
    assert isinstance(KakaoLocalClient("key"), BinFinder)
    assert isinstance(OfflineBinFinder(), BinFinder)


def test_haversine_gives_plausible_seoul_distances():
    # Seoul City Hall to Gangnam Station: about 8.9 km as the crow flies.
    assert 8_500 < haversine_m(126.9780, 37.5665, 127.0276, 37.4979) < 9_300
    assert haversine_m(127.0, 37.5, 127.0, 37.5) == 0


def test_the_kakao_client_parses_places_nearest_first(fake_kakao):
    with KakaoLocalClient(fake_kakao.api_key, base_url=fake_kakao.base_url) as client:
        result = client.search_keyword("재활용센터", radius=3000, **CITY_HALL)
    distances = [place.distance for place in result.documents]
    assert distances == sorted(distances)
    assert all(d is not None and d <= 3000 for d in distances)
    first = result.documents[0]
    assert first.place_name.startswith("시청역")
    assert first.road_address_name and first.address_name
    assert (first.x, first.y) == (126.978, 37.5665)
    assert result.meta.total_count == len(result.documents)
    assert result.meta.is_end
    assert (result.provider, result.offline) == ("kakao", False)


def test_the_kakao_request_uses_kakaoak_auth_and_kakaos_parameters():
    seen = {}

    def handler(request):
        seen["auth"] = request.headers["Authorization"]
        seen["params"] = dict(request.url.params)
        seen["path"] = request.url.path
        body = {
            "documents": [
                {"place_name": "A", "x": "127.0", "y": "37.5", "distance": "", "extra": 1}
            ],
            "meta": {"total_count": 1, "pageable_count": 1, "is_end": True},
        }
        return httpx.Response(200, json=body)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    result = KakaoLocalClient("rest-key", http=http).nearby(
        query="분리수거", radius=500, **CITY_HALL
    )
    assert seen["auth"] == "KakaoAK rest-key"
    assert seen["path"] == "/v2/local/search/keyword.json"
    assert seen["params"] == {
        "query": "분리수거",
        "x": "126.978000",
        "y": "37.566500",
        "radius": "500",
        "page": "1",
        "size": "15",
        "sort": "distance",
    }
    assert result.documents[0].distance is None  # Kakao sends "" without a centre


def test_paging_follows_kakaos_meta(fake_kakao):
    with KakaoLocalClient(fake_kakao.api_key, base_url=fake_kakao.base_url) as client:
        first = client.search_keyword("재활용", radius=20000, page=1, size=4, **CITY_HALL)
        last = client.search_keyword("재활용", radius=20000, page=3, size=4, **CITY_HALL)
    assert (len(first.documents), first.meta.is_end) == (4, False)
    assert (len(last.documents), last.meta.is_end) == (3, True)
    assert first.meta.total_count == 11


def test_a_wrong_kakao_key_is_fatal_and_redacted_even_when_echoed(fake_kakao):
    secret = "wrong-kakao-rest-key-123"
    with KakaoLocalClient(secret, base_url=fake_kakao.base_url) as client:
        with pytest.raises(ProviderRejectedError) as info:
            client.nearby(**CITY_HALL)
        shown = (str(info.value), repr(info.value), repr(client))
    assert info.value.status == 401
    assert not is_transient(info.value)
    assert "GROWBIN_KAKAO_REST_API_KEY" in str(info.value)
    assert all(secret not in text for text in shown)


@pytest.mark.parametrize(
    ("mode", "expected", "transient"),
    [
        ("error429", ProviderRateLimitedError, True),
        ("error500", ProviderUnavailableError, True),
        ("malformed", ProviderOutputError, True),
        ("wrong_schema", ProviderOutputError, True),
    ],
)
def test_kakao_failures_map_like_every_provider(fake_kakao, mode, expected, transient):
    fake_kakao.mode = mode
    client = KakaoLocalClient(fake_kakao.api_key, base_url=fake_kakao.base_url)
    with client, pytest.raises(expected) as info:
        client.nearby(**CITY_HALL)
    assert type(info.value) is expected
    assert is_transient(info.value) is transient
    # The user's position is in the query string: it must not reach logs or dead letters.
    assert "37.56" not in str(info.value)


def test_a_slow_kakao_times_out_as_transient(fake_kakao):
    fake_kakao.mode = "timeout"
    client = KakaoLocalClient(fake_kakao.api_key, base_url=fake_kakao.base_url, timeout=0.2)
    with client, pytest.raises(ProviderTimeoutError) as info:
        client.nearby(**CITY_HALL)
    assert is_transient(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"x": 37.5665, "y": 126.978},  # swapped: y is the latitude
        {"x": 126.978, "y": 37.5665, "radius": 20_001},
        {"x": 126.978, "y": 37.5665, "size": 16},
    ],
)
def test_bad_search_arguments_are_refused_before_any_call(fake_kakao, kwargs):
    with KakaoLocalClient(fake_kakao.api_key, base_url=fake_kakao.base_url) as client:
        with pytest.raises(ValueError):
            client.nearby(**kwargs)
        with pytest.raises(ValueError, match="keyword"):
            client.search_keyword(" ", **CITY_HALL)
    assert fake_kakao.call_count == 0


def test_the_offline_finder_sorts_the_fixture_by_distance_and_says_so():
    result = OfflineBinFinder().nearby(radius=2000, **CITY_HALL)
    names = [place.place_name for place in result.documents]
    assert names[0].startswith("시청역")
    assert [p.distance for p in result.documents] == sorted(p.distance for p in result.documents)
    assert all(p.distance <= 2000 for p in result.documents)
    assert (result.provider, result.offline) == ("offline", True)


def test_the_offline_finder_finds_nothing_far_from_seoul():
    busan = {"x": 129.0756, "y": 35.1796}
    result = OfflineBinFinder().nearby(radius=20000, **busan)
    assert result.documents == []
    assert result.meta.total_count == 0


def test_the_fake_kakao_and_the_offline_finder_agree(fake_kakao):
    with KakaoLocalClient(fake_kakao.api_key, base_url=fake_kakao.base_url) as client:
        online = client.nearby(radius=5000, **CITY_HALL)
    offline = OfflineBinFinder().nearby(radius=5000, **CITY_HALL)
    assert online.documents == offline.documents
