"""Fakes on 127.0.0.1 for the provider tests, and photos made in memory."""

import io

import pytest
from pydantic import SecretStr

from growbin.fakes.kakao_server import FakeKakao
from growbin.fakes.openai_server import FakeOpenAI
from growbin.scan.providers.openai_compat import OpenAIConfig


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake_kakao():
    with FakeKakao() as fake:
        yield fake


@pytest.fixture
def openai_config(fake_openai):
    return OpenAIConfig(base_url=fake_openai.base_url, api_key=SecretStr(fake_openai.api_key))


@pytest.fixture
def make_jpeg():
    from PIL import Image

    def make(colour=(170, 200, 230), size=(60, 120), fmt="JPEG"):
        out = io.BytesIO()
        Image.new("RGB", size, colour).save(out, fmt)
        return out.getvalue()

    return make


@pytest.fixture
def pet_rules():
    return {
        "item": "pet_bottle",
        "names": {"ko": "페트병", "en": "PET bottle"},
        "bin": {"ko": "투명 페트병 수거함", "en": "clear PET bottle bin"},
        "steps": [
            {"ko": "내용물을 비우고 헹궈 주세요", "en": "Empty and rinse it"},
            {"ko": "라벨을 떼어 주세요", "en": "Peel off the label"},
        ],
        "not_accepted": [{"ko": "기름이 묻은 병", "en": "oily bottles"}],
    }
