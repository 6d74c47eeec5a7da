"""External providers behind small interfaces: vision, text, nearby bins, OAuth.

Each has a networked client (OpenAI-compatible, Kakao) and, where it makes sense, an offline
stand-in that says it is one (``offline=True``). Failures are provider errors that
:func:`growbin.runtime.failures.is_transient` sorts into retry or dead letter.
"""

from growbin.scan.providers.base import (
    ITEM_CATEGORIES,
    KNOWN_CATEGORIES,
    KNOWN_ITEMS,
    Classification,
    Guidance,
    TextGenerator,
    VisionClassifier,
)
from growbin.scan.providers.errors import (
    InvalidImageError,
    InvalidToken,
    InvalidTokenError,
    ProviderError,
    ProviderOutputError,
    ProviderRateLimitedError,
    ProviderRefusedContentError,
    ProviderRejectedError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from growbin.scan.providers.kakao_map import (
    BinFinder,
    KakaoLocalClient,
    OfflineBinFinder,
    Place,
    PlaceSearch,
    SearchMeta,
)
from growbin.scan.providers.oauth import OAuthVerifier, VerifiedUser
from growbin.scan.providers.offline import OfflineTextGenerator, OfflineVisionClassifier
from growbin.scan.providers.openai_compat import (
    OpenAIConfig,
    OpenAITextGenerator,
    OpenAIVisionClassifier,
)

__all__ = [
    "ITEM_CATEGORIES",
    "KNOWN_CATEGORIES",
    "KNOWN_ITEMS",
    "BinFinder",
    "Classification",
    "Guidance",
    "InvalidImageError",
    "InvalidToken",
    "InvalidTokenError",
    "KakaoLocalClient",
    "OAuthVerifier",
    "OfflineBinFinder",
    "OfflineTextGenerator",
    "OfflineVisionClassifier",
    "OpenAIConfig",
    "OpenAITextGenerator",
    "OpenAIVisionClassifier",
    "Place",
    "PlaceSearch",
    "ProviderError",
    "ProviderOutputError",
    "ProviderRateLimitedError",
    "ProviderRefusedContentError",
    "ProviderRejectedError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "SearchMeta",
    "TextGenerator",
    "VerifiedUser",
    "VisionClassifier",
]
