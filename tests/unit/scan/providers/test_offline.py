import pytest

from growbin.errors import FatalTaskError
from growbin.runtime.failures import is_transient
from growbin.scan.providers import (
    Classification,
    InvalidImageError,
    OfflineTextGenerator,
    OfflineVisionClassifier,
    TextGenerator,
    VisionClassifier,
)
from growbin.scan.providers.base import CONFIDENT_AT, Candidate, match_hint, normalize_item
from growbin.scan.providers.offline import sentence


def _classification(item="pet_bottle", confidence=0.9):
    return Classification(
        category="plastic",
        item=item,
        confidence=confidence,
        provider="offline",
        model="hint",
        offline=True,
    )


def test_the_offline_providers_satisfy_the_provider_protocols():
    assert isinstance(OfflineVisionClassifier(), VisionClassifier)
    assert isinstance(OfflineTextGenerator(), TextGenerator)


@pytest.mark.parametrize(
    ("hint", "item"),
    [
        ("pet_bottle", "pet_bottle"),
        ("페트병", "pet_bottle"),
        ("우유팩", "paper_pack"),
        ("종이팩이에요", "paper_pack"),  # the longest name wins over 종이 (paper)
        ("a crushed beer can", "can"),
        ("Glass Bottle", "glass_bottle"),
        ("plastic bag", "vinyl_film"),
        ("candle", None),  # "can" must match a whole English word
        ("", None),
    ],
)
def test_hints_name_items_in_korean_english_or_by_id(hint, item):
    assert match_hint(hint) == item


def test_a_known_hint_decides_the_item_and_says_it_came_from_the_hint(make_jpeg):
    result = OfflineVisionClassifier().classify(
        make_jpeg((100, 100, 100), (60, 120)), hint="건전지"
    )
    assert (result.item, result.category) == ("battery", "hazardous")
    assert (result.provider, result.model, result.offline) == ("offline", "hint", True)
    assert result.confidence == 0.8  # a tall grey photo does not contradict a battery
    assert not result.unsure and result.candidates == ()
    assert result.evidence.startswith("the hint '건전지' decided")


def test_a_hint_the_photo_contradicts_still_decides_but_with_less_confidence(make_jpeg):
    result = OfflineVisionClassifier().classify(make_jpeg((250, 150, 20)), hint="건전지")
    assert result.item == "battery"  # the user holds the item; the photo is weak evidence
    assert result.confidence == 0.65
    assert not result.unsure
    assert "looked more like food_waste" in result.evidence


@pytest.mark.parametrize(
    ("colour", "size", "item"),
    [
        ((170, 200, 230), (60, 120), "pet_bottle"),  # tall, light blue: a clear bottle
        ((240, 240, 245), (60, 120), "pet_bottle"),  # tall, clear
        ((40, 120, 60), (60, 120), "glass_bottle"),  # tall, green
        ((100, 60, 20), (60, 120), "glass_bottle"),  # tall, dark brown
        ((160, 160, 165), (100, 110), "can"),  # squat, grey
        ((160, 120, 80), (160, 90), "cardboard"),  # wide, brown
        ((240, 160, 30), (100, 100), "food_waste"),  # orange
        ((245, 245, 240), (100, 80), "paper"),  # white, not tall
        ((200, 30, 160), (100, 100), "general_waste"),  # nothing the rules know
    ],
)
def test_without_a_hint_colour_and_shape_rank_the_candidates_and_the_answer_is_unsure(
    make_jpeg, colour, size, item
):
    result = OfflineVisionClassifier().classify(make_jpeg(colour, size))
    assert result.item == item
    assert result.unsure and result.confidence < CONFIDENT_AT
    assert result.candidates[0] == Candidate(item=item, confidence=result.confidence)
    confidences = [c.confidence for c in result.candidates]
    assert confidences == sorted(confidences, reverse=True)
    assert 1 <= len(result.candidates) <= 3
    assert (result.provider, result.model, result.offline) == ("offline", "colour-rules", True)
    assert result.evidence.startswith("no hint; decided by")
    assert result.state is None


def test_colour_alone_is_weaker_evidence_than_colour_and_shape(make_jpeg):
    tall_green = OfflineVisionClassifier().classify(make_jpeg((40, 120, 60), (60, 120)))
    wide_green = OfflineVisionClassifier().classify(make_jpeg((40, 120, 60), (120, 60)))
    magenta = OfflineVisionClassifier().classify(make_jpeg((200, 30, 160), (100, 100)))
    assert tall_green.item == wide_green.item == "glass_bottle"
    assert tall_green.confidence > wide_green.confidence > magenta.confidence
    assert "colour and shape" in tall_green.evidence
    assert "colour alone" in wide_green.evidence
    assert "nothing" in magenta.evidence


def test_a_close_second_candidate_lowers_the_confidence(make_jpeg):
    clear = OfflineVisionClassifier().classify(make_jpeg((240, 240, 245), (60, 120)))
    blue = OfflineVisionClassifier().classify(make_jpeg((170, 200, 230), (60, 120)))
    assert clear.item == blue.item == "pet_bottle"
    assert [c.item for c in clear.candidates[:2]] == ["pet_bottle", "paper"]  # white: paper?
    assert clear.confidence < blue.confidence


def test_an_unknown_hint_falls_back_to_the_colour_rules(make_jpeg):
    result = OfflineVisionClassifier().classify(make_jpeg((40, 120, 60)), hint="뭔지 모르겠어요")
    assert (result.item, result.model) == ("glass_bottle", "colour-rules")


def test_png_photos_work_too(make_jpeg):
    result = OfflineVisionClassifier().classify(make_jpeg((160, 120, 80), (160, 90), "PNG"))
    assert result.item == "cardboard"


def test_bytes_that_are_not_an_image_are_a_fatal_error():
    with pytest.raises(InvalidImageError) as info:
        OfflineVisionClassifier().classify(b"not an image")
    assert isinstance(info.value, FatalTaskError)
    assert not is_transient(info.value)
    assert "JPEG or PNG" in str(info.value)


def test_model_synonyms_map_to_item_ids_and_unknown_items_to_general_waste():
    assert normalize_item("aluminum_can", 0.9) == ("can", "metal", 0.9)
    assert normalize_item("Plastic Bottle", 0.7) == ("pet_bottle", "plastic", 0.7)
    assert normalize_item("paper_cup", 0.8) == ("general_waste", "general", 0.4)


def test_korean_guidance_renders_the_rules_with_the_right_particle(pet_rules):
    text = OfflineTextGenerator().guidance(_classification(), pet_rules).text
    assert text.splitlines() == [
        "페트병은 투명 페트병 수거함에 버려 주세요.",
        "1. 내용물을 비우고 헹궈 주세요.",
        "2. 라벨을 떼어 주세요.",
        "이런 것은 함께 버리면 안 돼요:",
        "- 기름이 묻은 병",  # a noun phrase in a list takes no full stop
    ]
    rules = {**pet_rules, "names": {"ko": "종이팩", "en": "paper pack"}}
    assert OfflineTextGenerator().guidance(_classification(), rules).text.startswith("종이팩은")
    rules = {**pet_rules, "names": {"ko": "유리", "en": "glass"}}
    assert OfflineTextGenerator().guidance(_classification(), rules).text.startswith("유리는")


def test_english_guidance_and_an_honest_offline_label(pet_rules):
    guidance = OfflineTextGenerator().guidance(_classification(), pet_rules, language="en")
    assert guidance.text.splitlines()[0] == "Put the PET bottle in the clear PET bottle bin."
    assert guidance.text.splitlines()[-2:] == ["Keep these out:", "- oily bottles"]
    assert (guidance.provider, guidance.model, guidance.offline) == ("offline", "template", True)


def test_other_languages_get_english(pet_rules):
    guidance = OfflineTextGenerator().guidance(_classification(), pet_rules, language="fr")
    assert guidance.text.startswith("Put the PET bottle")


def test_a_low_confidence_classification_is_flagged_to_the_user(pet_rules):
    unsure = _classification(confidence=0.3)
    korean = OfflineTextGenerator().guidance(unsure, pet_rules).text
    english = OfflineTextGenerator().guidance(unsure, pet_rules, language="en").text
    assert korean.startswith("사진만으로는 확실하지 않아요.")
    assert english.startswith("The photo is not clear enough to be sure.")


def test_guidance_accepts_the_rules_schema_and_its_lookup_result():
    schema = pytest.importorskip("growbin.scan.rules.schema")
    text = schema.Text
    rule = schema.Rule(
        id="pet_bottle",
        names=text(ko="페트병", en="PET bottle"),
        category="recyclable",
        bin=text(ko="투명 페트병 수거함", en="clear PET bottle bin"),
        steps=[text(ko="라벨을 떼어 주세요", en="Peel off the label")],
        not_accepted=[
            schema.NotAccepted(
                what=text(ko="기름병", en="oil bottles"),
                instead=text(ko="일반쓰레기", en="general"),
            )
        ],
        states={
            "contaminated": schema.StateRule(
                description=text(ko="씻어도 더러운 병이에요", en="A bottle that stays dirty"),
                bin=text(ko="종량제 봉투", en="general waste bag"),
                steps=[text(ko="종량제 봉투에 넣어 주세요", en="Put it in the bag")],
                replace_steps=True,
            )
        },
        sources=["test"],
    )
    generator = OfflineTextGenerator()
    plain = generator.guidance(_classification(), rule).text
    assert plain.startswith("페트병은 투명 페트병 수거함에 버려 주세요.")
    assert "- 기름병 → 일반쓰레기" in plain.splitlines()
    lookup = schema.LookupResult(
        requested_item="pet_bottle",
        requested_state="dirty",
        fallback=False,
        state_applied="contaminated",
        rule=rule,
        category="general",
        bin=rule.states["contaminated"].bin,
        steps=rule.states["contaminated"].steps,
    )
    adjusted = generator.guidance(_classification(), lookup.model_dump(mode="json"), language="en")
    assert adjusted.text.splitlines()[:3] == [
        "A bottle that stays dirty",
        "Put the PET bottle in the general waste bag.",
        "1. Put it in the bag.",
    ]


def test_an_unsure_classification_shows_its_candidates_instead_of_one_answer(pet_rules):
    unsure = Classification(
        category="plastic",
        item="pet_bottle",
        confidence=0.3,
        provider="offline",
        model="colour-rules",
        offline=True,
        candidates=(
            Candidate(item="pet_bottle", confidence=0.3),
            Candidate(item="paper", confidence=0.2),
            Candidate(item="general_waste", confidence=0.05),
        ),
    )
    korean = OfflineTextGenerator().guidance(unsure, pet_rules).text.splitlines()
    assert korean[:3] == [
        "사진만으로는 확실하지 않아요.",
        "후보: 페트병 30%, 종이 20%, 일반쓰레기 5%",
        "아래 안내는 가장 가까운 페트병 기준이에요. 다른 품목이면 이름을 힌트로 적어 다시 "
        "스캔해 주세요.",
    ]
    english = OfflineTextGenerator().guidance(unsure, pet_rules, language="en").text
    assert "Candidates: pet bottle 30%, paper 20%, general waste 5%" in english.splitlines()


@pytest.mark.parametrize(
    ("name", "particle"),
    [
        ("캔 (알루미늄캔·철캔)", "은"),  # the word before the parenthesis decides
        ("종이팩 (우유팩·멸균팩)", "은"),
        ("스티로폼 (발포합성수지)", "은"),
        ("유리병", "은"),
        ("의류", "는"),
        ("PET", "는"),
    ],
)
def test_the_korean_particle_follows_the_name_before_any_parenthesis(pet_rules, name, particle):
    rules = {**pet_rules, "names": {"ko": name, "en": "x"}}
    first = OfflineTextGenerator().guidance(_classification(), rules).text.splitlines()[0]
    assert first.startswith(f"{name}{particle} ")


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("넣어요", "ko", "넣어요."),
        ("넣어요.", "ko", "넣어요."),
        ("넣어요..", "ko", "넣어요."),
        ("기름이 묻은 병", "ko", "기름이 묻은 병"),
        ("Put it in the bag", "en", "Put it in the bag."),
        ("oily bottles", "en", "oily bottles"),
        ("Really?", "en", "Really?"),
    ],
)
def test_a_sentence_ends_in_one_full_stop_and_a_noun_phrase_in_none(text, language, expected):
    assert sentence(text, language) == expected
