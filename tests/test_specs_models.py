"""Model specs: hf: and st: on the MiniLM package's own folder, timm: and torchvision: where they
import, path/to/file.py:factory with --weights; each checked against a hand forward pass."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import embedding_explorer as ee
from embedding_explorer.specs.images import DefaultTransform
from specs_support import build_net, mask_mean, minilm_dir, write_glosses_csv, write_image_folder, write_net


def importable(name: str) -> bool:
    """Whether ``name`` imports here (the CUDA-only torchvision wheel fails against a CPU torch)."""
    try:
        __import__(name)
    except Exception:
        return False
    return True


# ---- hf: and st: ---------------------------------------------------------------------------------
def test_hf_spec_on_the_minilm_folder_equals_a_hand_forward_pass(tmp_path: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    folder = minilm_dir()
    write_glosses_csv(tmp_path / "glosses.csv", 24)
    run = ee.explore(
        f"hf:{folder}",
        ee.load_data(tmp_path / "glosses.csv", ee.load_model(f"hf:{folder}"), label_column="category"),
        ["encoder.layer.2", "encoder.layer.5"],
        out=tmp_path / "run",
        progress=False,
    )
    texts = [run.rendering(i).decode() for i in range(run.n_samples)]  # type: ignore[union-attr]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    encoded = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**encoded, output_hidden_states=True).hidden_states
    for index, layer in ((3, "encoder.layer.2"), (6, "encoder.layer.5")):
        expected = mask_mean(hidden[index], encoded["attention_mask"])
        np.testing.assert_allclose(np.asarray(run[layer].activations), expected, atol=2e-4)
    assert run.label_names is not None and all(name.count(".") == 1 for name in run.label_names)
    assert list(run.metadata.columns) == ["pos", "words", "n_tokens", "n_words"]  # + input statistics


def test_st_spec_pools_as_sentence_transformers_encodes(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    folder = minilm_dir()
    chosen = write_glosses_csv(tmp_path / "glosses.csv", 24)
    run = ee.explore(
        f"st:{folder}",
        tmp_path / "glosses.csv",
        ["0.model.encoder.layer.1", "2"],
        out=tmp_path / "run",
        progress=False,
    )
    expected = SentenceTransformer(str(folder), device="cpu").encode([g.text for g in chosen], batch_size=8)
    np.testing.assert_allclose(np.asarray(run["2"].activations), expected, atol=2e-4)
    assert run.n_samples == 24 and run.labels is None  # the CSV's label column is "category"


def test_hf_spec_of_an_image_model_uses_its_image_processor(tmp_path: Path) -> None:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(0)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    ViTModel(config).save_pretrained(tmp_path / "vit")
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "vit")
    paths = write_image_folder(tmp_path / "images", 12)
    layer = next(n for n, _ in ViTModel(config).named_modules() if n.endswith("layer.1") or n == "layers.1")
    run = ee.explore(
        f"hf:{tmp_path / 'vit'}", tmp_path / "images", [layer], out=tmp_path / "run", progress=False
    )
    from PIL import Image

    processor = ViTImageProcessor.from_pretrained(tmp_path / "vit")
    pixels = processor(images=[Image.open(p).convert("RGB") for p in paths], return_tensors="pt")[
        "pixel_values"
    ]
    assert pixels.shape == (12, 3, 32, 32)
    model = ViTModel.from_pretrained(tmp_path / "vit").eval()
    with torch.no_grad():
        hidden = model(pixel_values=pixels, output_hidden_states=True).hidden_states[2]
    np.testing.assert_allclose(np.asarray(run[layer].activations), hidden.mean(1).numpy(), atol=1e-5)


def test_st_pooled_outputs_keep_their_key_under_any_reduce() -> None:
    from embedding_explorer.reducers import Reducer
    from embedding_explorer.specs.inputs import resolve

    loaded = ee.load_model(f"st:{minilm_dir()}")
    assert set(loaded.reduce) == {"1", "2"}  # Pooling, Normalize
    layers = {"l0": "0.model.encoder.layer.0", "pooled": "1"}
    _, _, reduce, _ = resolve(loaded, None, layers, None, {})
    assert reduce == {"l0": None, "pooled": Reducer("auto", select="sentence_embedding")}
    _, _, reduce, _ = resolve(loaded, None, ["0.model.encoder.layer.0", "2"], "max", {})
    assert reduce == {"0.model.encoder.layer.0": "max", "2": Reducer("max", select="sentence_embedding")}
    assert resolve(loaded, None, ["0.model.encoder.layer.0"], "max", {})[2] == "max"


# ---- timm: and torchvision: ---------------------------------------------------------------------
@pytest.mark.skipif(not importable("timm"), reason="timm does not import here (it needs torchvision)")
def test_timm_spec_without_pretrained_weights_uses_the_data_config(tmp_path: Path) -> None:
    import timm

    write_image_folder(tmp_path / "images", 12)
    loaded = ee.load_model("timm:resnet18", pretrained=False)
    data = ee.load_data(tmp_path / "images", loaded)
    run = ee.explore(loaded, data, ["layer3"], out=tmp_path / "run", progress=False)
    config = timm.data.resolve_data_config({}, model=loaded.module)
    transform = timm.data.create_transform(**config)
    x = torch.stack([transform(data.data.original(i)) for i in range(run.n_samples)])
    captured = {}
    handle = loaded.module.layer3.register_forward_hook(lambda m, i, o: captured.setdefault("o", o))
    with torch.no_grad():
        loaded.module(x)
    handle.remove()
    np.testing.assert_allclose(np.asarray(run["layer3"].activations), captured["o"].mean((2, 3)), atol=1e-4)


@pytest.mark.skipif(not importable("torchvision"), reason="torchvision does not import with this torch")
def test_torchvision_spec_uses_the_default_weights_transforms(tmp_path: Path) -> None:
    from torchvision.models import get_model_weights

    loaded = ee.load_model("torchvision:resnet18", pretrained=False)
    assert repr(loaded.image_transform) == repr(get_model_weights("resnet18").DEFAULT.transforms())


def test_timm_and_torchvision_loaders_wire_the_library_as_documented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loaders' calls, with stand-ins for the two libraries (they do not import here: see the
    README); the tests above run the real ones where they import."""
    calls: list[tuple[str, object]] = []
    net = build_net()

    def create_model(name: str, pretrained: bool) -> torch.nn.Module:
        calls.append(("create_model", (name, pretrained)))
        if name != "resnet18":
            raise RuntimeError(f"Unknown model ({name})")
        return net

    def resolve_data_config(args: dict[str, object], model: torch.nn.Module) -> dict[str, object]:
        assert model is net
        return {"input_size": (3, 64, 64)}

    def create_transform(input_size: tuple[int, int, int]) -> DefaultTransform:
        return DefaultTransform(input_size[1])

    data = types.SimpleNamespace(resolve_data_config=resolve_data_config, create_transform=create_transform)
    monkeypatch.setitem(sys.modules, "timm", types.SimpleNamespace(create_model=create_model, data=data))
    loaded = ee.load_model("timm:resnet18", pretrained=False)
    assert loaded.module is net and calls == [("create_model", ("resnet18", False))]
    write_image_folder(tmp_path / "images", 4)
    assert tuple(ee.load_data(tmp_path / "images", loaded).data[0][0].shape) == (3, 64, 64)
    with pytest.raises(ee.SpecError, match=r"model spec 'timm:nonet': Unknown model \(nonet\)"):
        ee.load_model("timm:nonet")

    weights = types.SimpleNamespace(transforms=lambda: DefaultTransform(32))

    def get_model_weights(name: str) -> object:
        if name != "resnet18":
            raise ValueError(f"Unknown model {name}")
        return types.SimpleNamespace(DEFAULT=weights)

    def get_model(name: str, weights: object) -> torch.nn.Module:
        calls.append(("get_model", (name, weights)))
        return net

    models = types.SimpleNamespace(get_model_weights=get_model_weights, get_model=get_model)
    monkeypatch.setitem(sys.modules, "torchvision.models", models)
    loaded = ee.load_model("torchvision:resnet18")
    assert calls[-1] == ("get_model", ("resnet18", weights)) and repr(loaded.image_transform) == repr(
        DefaultTransform(32)
    )
    ee.load_model("torchvision:resnet18", pretrained=False)
    assert calls[-1] == ("get_model", ("resnet18", None))
    with pytest.raises(ee.SpecError, match=r"torchvision has no model 'nonet'"):
        ee.load_model("torchvision:nonet")


class _BrokenLoader(importlib.abc.Loader):
    """Imports a module the way a torchvision wheel built for another torch does: it raises."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        raise RuntimeError("operator torchvision::nms does not exist")


class _BrokenFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> object:
        return importlib.machinery.ModuleSpec(name, _BrokenLoader()) if name == "timm" else None


def test_a_library_that_fails_to_import_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "timm", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_BrokenFinder(), *sys.meta_path])
    with pytest.raises(
        ee.MissingExtraError, match=r"timm is installed but fails to import \(operator torchvision"
    ):
        ee.load_model("timm:resnet18")


def test_a_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for module, spec, extra in (
        ("timm", "timm:resnet18", "timm"),
        ("torchvision.models", "torchvision:resnet18", "vision"),
        ("transformers", "hf:bert-base-uncased", "hf"),
        ("sentence_transformers", "st:all-MiniLM-L6-v2", "hf"),
    ):
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
        with pytest.raises(ee.MissingExtraError, match=rf"pip install 'embedding-explorer\[{extra}\]'"):
            ee.load_model(spec)


# ---- file.py:factory -----------------------------------------------------------------------------
def test_file_factory_with_weights_equals_a_hand_forward_pass(tmp_path: Path) -> None:
    paths = write_image_folder(tmp_path / "images", 20)
    trained = build_net()
    torch.manual_seed(7)
    for p in trained.parameters():
        torch.nn.init.normal_(p, std=0.3)
    torch.save(trained.state_dict(), tmp_path / "w.pt")
    spec = f"{write_net(tmp_path)}:build"
    run = ee.explore(
        ee.load_model(spec, weights=tmp_path / "w.pt"),
        tmp_path / "images",
        ["3", "6"],
        out=tmp_path / "run",
        progress=False,
    )
    from PIL import Image

    x = torch.stack([DefaultTransform()(Image.open(p)) for p in paths])
    assert x.shape == (20, 3, 224, 224)
    with torch.no_grad():
        hidden = trained[:4](x)
        logits = trained[4:](hidden)
    np.testing.assert_allclose(np.asarray(run["3"].activations), hidden.mean((2, 3)).numpy(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(run["6"].activations), logits.numpy(), atol=1e-5)


def test_file_factory_uses_the_files_preprocess(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "images", 10)
    (tmp_path / "small.py").write_text(
        "import numpy as np, torch\nfrom torch import nn\n"
        "def build():\n    torch.manual_seed(0)\n    return nn.Sequential(nn.Flatten(), nn.Linear(784, 6))\n"
        "def preprocess(image):\n"
        "    return torch.from_numpy(np.asarray(image.convert('L'), dtype=np.float32) / 255)[None]\n"
    )
    loaded = ee.load_model(f"{tmp_path / 'small.py'}:build")
    data = ee.load_data(tmp_path / "images", loaded)
    assert tuple(data.data[0][0].shape) == (1, 28, 28)
    run = ee.explore(loaded, data, ["1"], out=tmp_path / "run", progress=False)
    images = torch.stack([data.data[i][0] for i in range(10)]).flatten(1)
    with torch.no_grad():
        expected = loaded.module[1](images).numpy()
    np.testing.assert_allclose(np.asarray(run["1"].activations), expected, atol=1e-5)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("keras:resnet", "unknown prefix 'keras:'"),
        ("hf:", "names no model after 'hf:'"),
        ("{tmp}/none.py:build", "no file"),
        ("{tmp}/net.py:missing", "has no function 'missing'"),
        ("{tmp}/net.py", "is not hf:, st:, timm:, torchvision: or path/to/file.py:factory"),
        ("hf:./no/such/folder", "no model folder ./no/such/folder"),
        ("", "must be a non-empty string"),
    ],
)
def test_bad_model_specs_are_one_line_errors(tmp_path: Path, spec: str, message: str) -> None:
    write_net(tmp_path)
    with pytest.raises(ee.SpecError, match=message) as info:
        ee.load_model(spec.format(tmp=tmp_path))
    assert "\n" not in str(info.value)


def test_bad_weights_are_refused_naming_the_file(tmp_path: Path) -> None:
    spec = f"{write_net(tmp_path)}:build"
    with pytest.raises(ee.SpecError, match=r"--weights .*nope.pt: no such file"):
        ee.load_model(spec, weights=tmp_path / "nope.pt")
    torch.save({"other": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ee.SpecError, match=r"other.pt: .*does not fit Sequential"):
        ee.load_model(spec, weights=tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ee.SpecError, match=r"junk.pt is not a state_dict torch can load safely"):
        ee.load_model(spec, weights=tmp_path / "junk.pt")


def test_no_pretrained_is_refused_where_the_spec_cannot_honour_it(tmp_path: Path) -> None:
    spec = f"{write_net(tmp_path)}:build"
    with pytest.raises(ee.SpecError, match=r"--no-pretrained is for hf:, timm: and torchvision:"):
        ee.load_model(spec, pretrained=False)
    with pytest.raises(ee.SpecError, match=r"--no-pretrained is not available for st: models"):
        ee.load_model("st:all-MiniLM-L6-v2", pretrained=False)


def test_a_model_file_imports_the_modules_beside_it(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "ee_test_blocks.py").write_text(
        "import numpy as np\nimport torch\nfrom torch import nn\n"
        "class Block(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(784, 3)\n"
        "    def forward(self, x):\n        return self.fc(x.flatten(1))\n"
        "def grey(image):\n"
        "    return torch.from_numpy(np.asarray(image.convert('L'), dtype=np.float32))[None]\n"
    )
    (project / "net.py").write_text(
        "import torch\nfrom ee_test_blocks import Block, grey\n"
        "def build():\n    torch.manual_seed(0)\n    return Block()\n"
        "preprocess = grey\n"
    )
    (project / "pandas.py").write_text("raise ImportError('the project file, not the package')\n")
    write_image_folder(tmp_path / "images", 6)
    try:
        loaded = ee.load_model(f"{project / 'net.py'}:build")
        # first while the file ran; last since: a file beside it does not hide an installed package
        assert type(loaded.module).__name__ == "Block" and sys.path[-1] == str(project.resolve())
        found = importlib.machinery.PathFinder.find_spec("pandas", sys.path)  # as a fresh import looks
        assert found is not None and found.origin != str(project.resolve() / "pandas.py")
        run = ee.explore(loaded, ee.load_data(tmp_path / "images", loaded, workers=2), ["fc"],
                         out=tmp_path / "run", progress=False)  # fmt: skip
    finally:
        sys.modules.pop("ee_test_blocks", None)
        if str(project.resolve()) in sys.path:
            sys.path.remove(str(project.resolve()))
    data = ee.load_data(tmp_path / "images", loaded).data
    with torch.no_grad():
        expected = loaded.module(torch.stack([data[i][0] for i in range(6)])).numpy()
    np.testing.assert_allclose(np.asarray(run["fc"].activations), expected, atol=1e-5)
