"""Every file the package writes (and the text files it reads) is UTF-8 whatever the locale (issue 23, item 10)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

NAME = "crème brûlée"
SRC = Path(__file__).resolve().parents[1] / "src" / "aape_lightning"

# A run under the C locale: Python's text files default to ASCII there.
SCRIPT = textwrap.dedent(
    """
    import json, locale, sys
    from pathlib import Path
    from types import SimpleNamespace

    out = Path(sys.argv[1])
    assert locale.getpreferredencoding(False).lower() in ("ascii", "ansi_x3.4-1968"), locale.getpreferredencoding(False)
    name = json.loads(sys.argv[2])

    # the run's config.yaml, by Lightning's SaveConfigCallback as `aape fit` calls it
    from lightning.pytorch.cli import SaveConfigCallback
    from aape_lightning.lightning_cli.parser import AAPEArgumentParser
    parser = AAPEArgumentParser()
    parser.add_argument("--classes", type=list[str])
    config = parser.parse_args(["--classes", json.dumps([name])])
    trainer = SimpleNamespace(log_dir=str(out / "run"), is_global_zero=True,
                              strategy=SimpleNamespace(broadcast=lambda x: x))
    SaveConfigCallback(parser, config).setup(trainer, None, "fit")

    # a class folder named in UTF-8 on disk: Python reads its name as surrogate escapes under this locale
    from aape_lightning.data.classification.readers import ImageFolderReader
    splits = ImageFolderReader(str(out / "folders"), val_fraction=0.0, test_fraction=0.0).read()
    assert splits.classnames == ["cat", name], splits.classnames
    image = next(it.path for it in splits.train if it.classname == name)

    # predictions, one of them for an image in that folder
    from aape_lightning.callbacks import PredictionWriter
    writer = PredictionWriter(str(out / "predictions.csv"))
    trainer = SimpleNamespace(world_size=1, is_global_zero=True, log_dir=str(out), default_root_dir=str(out),
                              print=lambda *a: None)
    batch = {"path": ["a.png", image], "class": [name, name], "probability": [0.5, 0.5]}
    writer.write_on_batch_end(trainer, None, batch, None, None, 0, 0)
    writer.on_predict_epoch_end(trainer, None)

    # a CoOp split file written by another tool in UTF-8, read back
    from PIL import Image
    from aape_lightning.data.classification.readers import CoOpSplitReader
    (out / "data" / "images").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(out / "data" / "images" / "a.png")
    rows = [["a.png", 0, name]]
    (out / "data" / "split_zhou_X.json").write_bytes(
        json.dumps({"train": rows, "val": rows, "test": rows}, ensure_ascii=False).encode("utf-8"))
    assert CoOpSplitReader(str(out / "data")).read().classnames == [name]
    print("ok")
    """
)


@pytest.mark.slow
def test_files_are_utf8_under_the_c_locale(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_")}
    env.update(LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONIOENCODING="utf-8", PYTHONPATH=str(SRC.parent))
    for folder in ("cat", NAME):
        (tmp_path / "folders" / folder).mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(tmp_path / "folders" / folder / "0.png")
    script = tmp_path / "write.py"
    script.write_text(SCRIPT, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), str(tmp_path), json.dumps(NAME)], env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
    assert NAME in (tmp_path / "run" / "config.yaml").read_bytes().decode("utf-8")
    predictions = (tmp_path / "predictions.csv").read_bytes().decode("utf-8")
    assert f"{NAME},0.500000" in predictions and str(tmp_path / "folders" / NAME / "0.png") in predictions


TEXT_IO = re.compile(r"\.(write_text|read_text)\(|(?<![\w.])open\(|\.open\(|os\.fdopen\(")
NOT_TEXT = re.compile(r'encoding=|"[rwax]b"|Image\.open|os\.open\(|urlopen|fsspec')


def test_no_text_file_is_opened_in_the_locale_encoding():
    """Every text open/read/write in the package names its encoding (a static check that catches new code)."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = str(path.relative_to(SRC))
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if TEXT_IO.search(line) and not line.lstrip().startswith("#"):
                call = " ".join(lines[i : i + 3])  # the arguments may run onto the next lines
                if not NOT_TEXT.search(call) and "lock" not in line:
                    found.append(f"{rel}:{i + 1}: {line.strip()}")
    assert found == []
