import json
import shutil

import pytest

from growbin.scan.rules import Category, LookupResult, RulesError, State, load_rules
from growbin.scan.rules.loader import data_dir, load_rule

ITEMS_FROM_THE_ISSUE = {
    "pet_bottle",
    "can",
    "glass_bottle",
    "paper",
    "cardboard",
    "paper_pack",
    "vinyl_film",
    "styrofoam",
    "food_waste",
    "general_waste",
    "battery",
    "small_appliance",
    "fluorescent_lamp",
    "clothing",
    "plastic_container",
}


@pytest.fixture(scope="module")
def book():
    return load_rules()


@pytest.fixture
def rules_copy(tmp_path):
    """A writable copy of the shipped rules, to break on purpose."""
    target = tmp_path / "rules"
    shutil.copytree(data_dir(), target)
    return target


def write(path, data):
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


@pytest.mark.parametrize("path", sorted(data_dir().glob("*.json")), ids=lambda p: p.name)
def test_every_shipped_rule_file_validates_and_is_named_after_its_id(path):
    rule = load_rule(path)
    assert rule.id == path.stem
    assert rule.sources and rule.steps


def test_the_rule_book_has_every_item_of_the_issue_and_a_general_fallback(book):
    assert set(book.items()) == ITEMS_FROM_THE_ISSUE
    assert book.general.id == "general"


def test_a_known_item_is_found_without_fallback(book):
    result = book.lookup("pet_bottle")
    assert not result.fallback and result.rule.id == "pet_bottle"
    assert result.category is Category.RECYCLABLE
    assert "투명 페트병" in result.bin.ko
    assert [s.ko for s in result.steps] == [s.ko for s in result.rule.steps]


def test_an_alias_or_a_messy_spelling_finds_the_item(book):
    assert book.lookup("aluminum_can").rule.id == "can"
    assert book.lookup(" Aluminum-Can ").rule.id == "can"
    assert book.lookup("milk carton").rule.id == "paper_pack"


def test_an_unknown_item_falls_back_to_the_general_rule_and_says_so(book):
    result = book.lookup("sofa")
    assert result.fallback and result.rule.id == "general"
    assert result.requested_item == "sofa"
    assert result.category is Category.GENERAL


def test_the_vision_models_dirty_state_applies_the_contaminated_rule(book):
    result = book.lookup("pet_bottle", "dirty")
    assert result.state_applied is State.CONTAMINATED
    assert result.requested_state == "dirty"
    assert len(result.steps) == len(result.rule.steps) + 1
    assert "헹궈" in result.steps[0].ko


def test_a_state_that_changes_the_bin_replaces_the_steps_and_the_category(book):
    result = book.lookup("glass_bottle", "broken")
    assert result.state_applied is State.BROKEN
    assert result.category is Category.GENERAL
    assert "종량제" in result.bin.ko
    assert "신문지" in result.steps[0].ko and len(result.steps) == 2


def test_a_clean_or_unknown_state_keeps_the_usual_rule(book):
    for state in ("clean", "sparkly", None, ""):
        result = book.lookup("can", state)
        assert result.state_applied is None
        assert result.steps == list(result.rule.steps)


def test_a_state_the_item_does_not_define_is_not_applied(book):
    assert book.lookup("battery", "wet").state_applied is None


def test_a_lookup_result_survives_a_json_round_trip_between_tasks(book):
    result = book.lookup("small_appliance", "large")
    payload = json.loads(json.dumps(result.model_dump(mode="json"), ensure_ascii=False))
    assert payload["state_applied"] == "large" and payload["fallback"] is False
    assert LookupResult.model_validate(payload) == result


def test_a_broken_field_is_reported_with_the_file_and_the_field(rules_copy):
    path = rules_copy / "can.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["steps"][1]["ko"] = ""
    write(path, data)
    with pytest.raises(RulesError) as info:
        load_rules(rules_copy)
    assert "can.json" in str(info.value) and "steps.1.ko" in str(info.value)


def test_invalid_json_is_reported_with_its_line(rules_copy):
    (rules_copy / "can.json").write_text('{\n  "id": "can",\n  oops\n}', encoding="utf-8")
    with pytest.raises(RulesError, match=r"can\.json:3:3: not valid JSON"):
        load_rules(rules_copy)


def test_a_misspelt_state_is_refused_at_load(rules_copy):
    path = rules_copy / "pet_bottle.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["states"]["contaminted"] = data["states"].pop("contaminated")
    write(path, data)
    with pytest.raises(RulesError, match=r"pet_bottle\.json.*\n.*states\.contaminted"):
        load_rules(rules_copy)


def test_english_in_the_korean_field_is_refused(rules_copy):
    path = rules_copy / "paper.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["names"]["ko"] = "Paper"
    write(path, data)
    with pytest.raises(RulesError, match=r"names\.ko.*Hangul"):
        load_rules(rules_copy)


def test_an_unknown_field_is_refused(rules_copy):
    path = rules_copy / "paper.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["colour"] = "white"
    write(path, data)
    with pytest.raises(RulesError, match="colour"):
        load_rules(rules_copy)


def test_a_file_named_differently_from_its_id_is_refused(rules_copy):
    (rules_copy / "can.json").rename(rules_copy / "tin.json")
    with pytest.raises(RulesError, match=r"tin\.json.*rename the file to can\.json"):
        load_rules(rules_copy)


def test_one_name_used_by_two_rules_is_refused(rules_copy):
    path = rules_copy / "paper.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["aliases"].append("aluminum_can")
    write(path, data)
    with pytest.raises(RulesError, match="'aluminum_can' is used by both"):
        load_rules(rules_copy)


def test_rules_without_the_general_fallback_are_refused(rules_copy):
    (rules_copy / "general.json").unlink()
    with pytest.raises(RulesError, match=r"general\.json"):
        load_rules(rules_copy)


def test_an_empty_rules_directory_is_refused(tmp_path):
    with pytest.raises(RulesError, match="no rule files"):
        load_rules(tmp_path)
