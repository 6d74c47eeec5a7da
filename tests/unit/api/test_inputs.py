"""Strict inputs: C1 control characters are refused like C0, and refusals say by how much."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from growbin.api.keys import ApiKeyError, _check_name
from growbin.api.problems import ApiError
from growbin.api.schemas import ReplayRequest, ScanUrlRequest
from growbin.api.uploads import check_hint, clean_filename
from growbin.scan.images import ImageRejected, validate_image

C1 = "\u009b"  # CSI: a terminal escape in one character, like ESC [


def test_a_hint_with_a_c1_control_character_is_refused_like_a_c0_one():
    for bad in (f"bottle{C1}31m", "bottle\x1b[31m", "a\u0085b"):
        with pytest.raises(ApiError) as caught:
            check_hint(bad)
        assert caught.value.status == 422


def test_json_fields_refuse_c1_control_characters():
    with pytest.raises(ValidationError):
        ScanUrlRequest(image_url="https://images.example/a.jpg", hint=f"x{C1}")
    with pytest.raises(ValidationError):
        ScanUrlRequest(image_url=f"https://images.example/{C1}.jpg")
    with pytest.raises(ValidationError):
        ReplayRequest(task=f"growbin.{C1}")


def test_a_filename_loses_its_c1_control_characters():
    assert clean_filename(f"pho{C1}to\u0085.jpg") == "photo.jpg"


def test_a_key_owner_or_name_with_a_c1_control_character_is_refused():
    with pytest.raises(ApiKeyError):
        _check_name("owner", f"alice{C1}")


def test_an_image_over_the_byte_limit_is_refused_saying_by_how_much():
    data = b"\xff\xd8\xff\xe0" + b"\0" * (10_500_003 - 4)
    with pytest.raises(ImageRejected) as caught:
        validate_image(data, filename="big.jpg")
    message = str(caught.value)
    assert "10,500,003 bytes" in message
    assert "14,243 bytes over" in message
    assert "10,485,760" in message


def test_a_declared_body_over_the_cap_is_refused_saying_by_how_much():
    from tests.unit.api.test_limits import call, make_app

    status, body, _ = call(make_app([]), [b"x" * 500], 500)
    assert status == 413
    assert b"500 bytes" in body and b"400 bytes over" in body and b"100 bytes" in body
