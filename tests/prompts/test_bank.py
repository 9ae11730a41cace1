import json

import pytest

from aape_lightning.errors import PromptBankError
from aape_lightning.prompts.bank import read_prompt_file


def write(tmp_path, text):
    path = tmp_path / "bank.json"
    path.write_text(text)
    return path


def test_duplicate_keys_are_an_error(tmp_path):
    path = write(tmp_path, '{"cat": ["a"], "cat": ["b"]}')
    with pytest.raises(PromptBankError, match="'cat' appears twice"):
        read_prompt_file(path)


def test_missing_file_and_bad_shape(tmp_path):
    with pytest.raises(PromptBankError, match="does not exist"):
        read_prompt_file(tmp_path / "nope.json")
    with pytest.raises(PromptBankError, match="CuPL format"):
        read_prompt_file(write(tmp_path, json.dumps({"cat": "not a list"})))
