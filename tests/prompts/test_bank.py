import json

import pytest

from aape_lightning.errors import PromptBankError
from aape_lightning.prompts.bank import prompts_for_classes, read_prompt_file


def write(tmp_path, text):
    path = tmp_path / "bank.json"
    path.write_text(text)
    return path


def test_match_by_index_ignoring_case_and_underscores(tmp_path):
    bank = read_prompt_file(write(tmp_path, json.dumps({"Red_Square": ["a"], "missile": ["m1", "m2"]})))
    # two classes share a name (as in ImageNet): both keep their prompts, by index
    out = prompts_for_classes(bank, ["red square", "missile", "missile"])
    assert out == [["a"], ["m1", "m2"], ["m1", "m2"]]


def test_missing_classes_are_listed(tmp_path):
    path = write(tmp_path, json.dumps({"cat": ["a cat"]}))
    with pytest.raises(PromptBankError, match=r"no prompts for 2 of 3 classes: \['dog', 'cow'\].*prompt_fallback"):
        prompts_for_classes(read_prompt_file(path), ["cat", "dog", "cow"], str(path))


def test_fallback_uses_template(tmp_path):
    bank = read_prompt_file(write(tmp_path, json.dumps({"cat": ["a cat"]})))
    assert prompts_for_classes(bank, ["cat", "dog"], fallback_template="a photo of a {}.")[1] == ["a photo of a dog."]


def test_empty_prompt_list_is_an_error(tmp_path):
    path = write(tmp_path, json.dumps({"cat": [], "dog": ["x"]}))
    with pytest.raises(PromptBankError, match="'cat' has an empty prompt list"):
        prompts_for_classes(read_prompt_file(path), ["cat", "dog"], str(path))


def test_duplicate_keys_are_an_error(tmp_path):
    path = write(tmp_path, '{"cat": ["a"], "cat": ["b"]}')
    with pytest.raises(PromptBankError, match="'cat' appears twice"):
        read_prompt_file(path)


def test_missing_file_and_bad_shape(tmp_path):
    with pytest.raises(PromptBankError, match="does not exist"):
        read_prompt_file(tmp_path / "nope.json")
    with pytest.raises(PromptBankError, match="CuPL format"):
        read_prompt_file(write(tmp_path, json.dumps({"cat": "not a list"})))
