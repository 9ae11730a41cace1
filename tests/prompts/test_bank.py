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


def test_invalid_utf8_is_a_clear_error_naming_file_offset_and_fix(tmp_path, capsys):
    from aape_lightning.cli import prompts_main
    from aape_lightning.errors import ClassListError, UserError
    from aape_lightning.prompts.generate import read_class_list
    from aape_lightning.prompts.mapping import read_mapping_file

    path = tmp_path / "latin1.json"
    path.write_bytes('{"caf\u00e9": ["a caf\u00e9."]}'.encode("latin-1"))
    with pytest.raises(PromptBankError, match=r"latin1\.json: not UTF-8 text at byte offset 5 .*re-save the file as UTF-8"):
        read_prompt_file(path)
    with pytest.raises(PromptBankError, match="byte offset 5"):
        read_mapping_file(path)
    with pytest.raises(ClassListError, match="byte offset 5") as info:
        read_class_list(path)
    assert isinstance(info.value, UserError)  # `aape` prints it as one line and exits 2
    assert prompts_main(["generate", "--classes", str(path), "--out", str(tmp_path / "o.json"), "--lm", "x"]) == 2
    assert "not UTF-8 text at byte offset 5" in capsys.readouterr().err
