"""``ee.list_layers``, ``format_layers`` and the ``layers`` command."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer.cli import main
from embedding_explorer.exceptions import EmbeddingExplorerError, LayerNotFoundError
from embedding_explorer.layers import format_layers


class Stack(nn.Module):
    """A stem conv, 12 identical blocks, a ReLU used twice and a head: a deep model in small."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.blocks = nn.Sequential(*[nn.Sequential(nn.Linear(4, 4), nn.ReLU()) for _ in range(12)])
        self.act = nn.ReLU()
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x).mean(dim=(2, 3))
        return self.head(self.act(self.act(self.blocks(h))))


def test_every_module_with_its_type_shape_calls_and_reduction(tmp_path: Path) -> None:
    model = Stack()
    x = torch.randn(5, 1, 6, 7)
    infos = {i.name: i for i in ee.list_layers(model, x)}
    assert list(infos) == ["input", *(n for n, _ in model.named_modules() if n)]
    assert infos["input"].shape == (2, 1, 6, 7) and infos["input"].dim == 42  # flattened pixels
    stem = infos["stem"]
    assert (stem.type, stem.shape, stem.calls, stem.dim) == ("Conv2d", (2, 4, 6, 7), 1, 4)
    assert stem.reduction == "mean over 6x7 positions -> 4"
    assert stem.n_parameters == sum(p.numel() for p in model.stem.parameters())
    assert infos["blocks.3.0"].reduction == "kept -> 4" and infos["blocks.3.0"].capturable
    act = infos["act"]
    assert act.calls == 2 and not act.capturable and "name one call, e.g. 'act:0'" in act.reduction
    # what it reports is what explore captures: the width of each capturable layer
    run = ee.explore(model, x, ["stem", "blocks.0.0"], out=tmp_path / "run", progress=False)
    assert [run[n].dim for n in run.layers] == [infos[n].dim for n in run.layers]


def test_without_an_example_types_only_and_match_filters() -> None:
    model = Stack()
    infos = ee.list_layers(model)
    assert all(i.shape is None and i.calls is None for i in infos)
    assert [i.name for i in ee.list_layers(model, match="blocks.1*.0")] == [
        "blocks.1.0",
        "blocks.10.0",
        "blocks.11.0",
    ]
    assert [i.name for i in ee.list_layers(model, match=r"^blocks\.\d+$")][:2] == ["blocks.0", "blocks.1"]


def test_token_outputs_are_mean_reduced_honouring_the_mask() -> None:
    class Tokens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(10, 6)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.embed(input_ids)

    batch = {"input_ids": torch.randint(0, 10, (3, 5)), "attention_mask": torch.ones(3, 5, dtype=torch.long)}
    (embed,) = ee.list_layers(Tokens(), batch)
    assert embed.shape == (2, 5, 6) and embed.reduction == "mean over 5 tokens (mask-aware) -> 6"


def test_the_tree_folds_repeated_blocks_and_keeps_both_ends() -> None:
    text = format_layers(ee.list_layers(Stack(), torch.randn(2, 1, 4, 4)))
    lines = text.splitlines()
    assert lines[0].split() == ["name", "type", "output", "calls", "reduction"]
    names = [line.split()[0] for line in lines[1:]]
    assert "blocks.0.0" in names and "blocks.11.1" in names and "blocks.5" not in names
    assert "... 10 more Sequential blocks (blocks.1 .. blocks.10, 30 modules)" in text
    assert len(lines) < len(list(Stack().named_modules()))  # 13 + 36 modules in fewer lines
    flat = format_layers(ee.list_layers(Stack(), match="blocks.5*"), tree=False)
    assert [line.split()[0] for line in flat.splitlines()[1:]] == ["blocks.5", "blocks.5.0", "blocks.5.1"]


def test_a_model_that_is_not_a_module_and_an_empty_example_are_refused() -> None:
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module, not str"):
        ee.list_layers("resnet18")  # type: ignore[arg-type]
    with pytest.raises(EmbeddingExplorerError, match="example has no samples"):
        ee.list_layers(Stack(), [])


def test_a_pattern_matches_as_a_glob_or_as_a_regular_expression() -> None:
    model = Stack()
    # a regular expression with a character class: no glob matches it, the expression does
    assert [i.name for i in ee.list_layers(model, match=r"blocks\.1[01]\.0")] == [
        "blocks.10.0",
        "blocks.11.0",
    ]
    assert [i.name for i in ee.list_layers(model, match="stem|head")] == ["stem", "head"]
    assert [i.name for i in ee.list_layers(model, match="blocks.?")] == [f"blocks.{i}" for i in range(10)]


def test_an_example_the_model_does_not_take_names_the_call(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingExplorerError) as raised:
        ee.list_layers(Stack(), torch.randn(5, 3, 6, 7))  # three channels: the stem takes one
    assert str(raised.value).startswith(
        "the model (Stack) failed on the first batch, called as model((2, 3, 6, 7) float32): RuntimeError: "
    )
    assert isinstance(raised.value.__cause__, RuntimeError)


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("bogus", "device='bogus' is not a torch device; use e.g. 'cpu', 'cuda', 'cuda:1' or 'mps'"),
        ("cuda:99", "device='cuda:99' but "),
    ],
)
def test_a_device_is_checked_as_explore_checks_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], device: str, message: str
) -> None:
    (tmp_path / "net.py").write_text(FACTORY)
    np.save(tmp_path / "x.npy", np.zeros((4, 3), np.float32))
    argv = ["layers", "--model", f"{tmp_path}/net.py:build", "--data", str(tmp_path / "x.npy")]
    assert main([*argv, "--device", device]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"embedding-explorer: error: {message}") and err.count("\n") == 1, err


def test_unknown_layers_still_suggest_close_names() -> None:
    with pytest.raises(LayerNotFoundError, match=r"no module 'haed'; closest names: head"):
        ee.explore(Stack(), torch.randn(4, 1, 4, 4), ["haed"], progress=False)


FACTORY = """
import torch
from torch import nn

def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))

def not_a_model():
    return 3
"""


def test_layers_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "net.py").write_text(FACTORY)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32))
    assert main(["layers", "--model", f"{tmp_path}/net.py:build", "--data", str(tmp_path / "x.npy")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^0\s+Linear\s+\(2, 5\)\s+1\s+kept -> 5$", out, re.M), out
    assert re.search(r"^2\s+Linear\s+\(2, 2\)\s+1\s+kept -> 2$", out, re.M), out
    assert main(["layers", "--model", f"{tmp_path}/net.py:build", "--match", "1"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()[1:2]] == ["1"] and "no --data" in out


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("net.py", "is not hf:, st:, timm:, torchvision: or path/to/file.py:factory"),
        ("missing.py:build", "no file"),
        ("net.py:nope", "has no function 'nope'; it defines build, not_a_model"),
        ("net.py:not_a_model", r"not_a_model\(\) returned int, not a module"),
    ],
)
def test_bad_model_specs_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str, message: str
) -> None:
    (tmp_path / "net.py").write_text(FACTORY)
    assert main(["layers", "--model", str(tmp_path / spec)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err


def test_bad_data_file_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "net.py").write_text(FACTORY)
    assert main(["layers", "--model", f"{tmp_path}/net.py:build", "--data", str(tmp_path / "x.npy")]) == 2
    assert "no such file" in capsys.readouterr().err
