"""Data specs: Fashion-MNIST PNG folders (class subfolders and flat), tables of texts and of image
paths (CSV, Parquet, JSONL), save_to_disk data sets, --limit, and the registry of data kinds."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

import embedding_explorer as ee
from embedding_explorer.demos import fashion_mnist
from embedding_explorer.records import as_png
from embedding_explorer.specs import DataKind, LoadedData, register_data_kind
from embedding_explorer.specs.data import DATA_KINDS
from embedding_explorer.specs.images import IMAGENET_MEAN, IMAGENET_STD, DefaultTransform
from specs_support import fashion_images, minilm_dir, write_glosses_csv, write_image_folder, write_net


def folder_name(label: int) -> str:
    return fashion_mnist.CLASSES[label].replace("/", "-")


def pool_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 5, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())


# ---- image folders -------------------------------------------------------------------------------
def test_class_subfolders_become_labels_and_thumbnails_keep_the_original(tmp_path: Path) -> None:
    paths = write_image_folder(tmp_path / "images", 30)
    run = ee.explore(pool_net(), tmp_path / "images", ["1", "3"], out=tmp_path / "run", progress=False)
    classes = sorted({folder_name(int(y)) for y in fashion_images(30)[1]})
    assert run.label_names == classes
    assert [run.label_names[y] for y in run.labels] == [p.parent.name for p in paths]  # type: ignore[union-attr]
    assert run.metadata["file"].tolist() == [f"{p.parent.name}/{p.name}" for p in paths]
    for i in (0, 17, 29):  # the 28 x 28 original, not the 224 x 224 normalised tensor
        shown = np.asarray(Image.open(io.BytesIO(as_png(run.rendering(i)))))  # type: ignore[arg-type]
        np.testing.assert_array_equal(shown, np.asarray(Image.open(paths[i])))
    x = torch.stack([DefaultTransform()(Image.open(p)) for p in paths])
    with torch.no_grad():
        expected = pool_net()(x).numpy()
    np.testing.assert_allclose(np.asarray(run["3"].activations), expected, atol=1e-5)


def test_the_default_transform_resizes_crops_and_normalises() -> None:
    image = Image.fromarray(np.full((30, 60, 3), (255, 0, 128), np.uint8))
    x = DefaultTransform(16)(image)
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32
    expected = (np.array([1.0, 0.0, 128 / 255]) - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(x.mean((1, 2)).numpy(), expected, atol=1e-5)


def test_a_flat_folder_has_no_labels_and_reads_any_image_type(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "flat", 6, classes=False)
    Image.new("RGB", (300, 200), (10, 200, 30)).save(tmp_path / "flat" / "big.webp")
    Image.new("RGB", (50, 90), (0, 0, 255)).save(tmp_path / "flat" / "tall.JPG")
    data = ee.load_data(tmp_path / "flat")
    assert data.n_samples == 8 and data.label_names is None
    assert {tuple(data.data[i].shape) for i in range(8)} == {(3, 224, 224)}
    run = ee.explore(pool_net(), data, ["3"], out=tmp_path / "run", progress=False)
    assert run.labels is None and run.n_samples == 8
    sizes = [Image.open(io.BytesIO(as_png(run.rendering(i)))).size for i in (6, 7)]  # type: ignore[arg-type]
    assert sizes == [(128, 85), (50, 90)]  # big.webp as a 128-pixel thumbnail, tall.JPG as it is
    # input statistics of the thumbnails as stored (a mixed folder: every image as RGB)
    for i in range(8):
        shown = np.asarray(Image.open(io.BytesIO(as_png(run.rendering(i)))).convert("RGB"))  # type: ignore[arg-type]
        luma = shown.astype(np.float64) @ [0.299, 0.587, 0.114] / 255
        assert run.metadata["brightness"].iat[i] == pytest.approx(luma.mean(), abs=1e-12)
        assert run.metadata["saturation"].iat[i] == pytest.approx(
            np.mean(np.divide(np.ptp(shown, axis=-1), shown.max(axis=-1), out=np.zeros(shown.shape[:2]),
                              where=shown.max(axis=-1) > 0)), abs=1e-12)  # fmt: skip


def test_limit_is_stratified_by_label_else_the_first_n(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "images", 60)
    data = ee.load_data(tmp_path / "images", limit=20)
    counts = Counter(data.data.labels.tolist())
    assert data.n_samples == 20 and len(counts) == 10 and set(counts.values()) == {2}
    flat = write_image_folder(tmp_path / "flat", 12, classes=False)
    assert ee.load_data(tmp_path / "flat", limit=5).data.paths == flat[:5]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", r"data '.*nowhere': no such file or folder"),
        ("empty", r"data folder '.*empty' has no samples: no images \(.jpg, .jpeg, .png, .webp\)"),
        ("mixed", r"has class subfolders and images outside them \(e.g. 0000.png\)"),
        ("unknown", r"data file '.*notes.txt': unknown type '.txt'"),
    ],
)
def test_bad_data_specs_are_one_line_errors(tmp_path: Path, setup: str, message: str) -> None:
    spec = {"missing": "nowhere", "empty": "empty", "mixed": "mixed", "unknown": "notes.txt"}[setup]
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no images")
    write_image_folder(tmp_path / "mixed", 3)
    write_image_folder(tmp_path / "mixed", 1, classes=False)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ee.SpecError, match=message) as info:
        ee.load_data(tmp_path / spec)
    assert "\n" not in str(info.value)


# ---- tables --------------------------------------------------------------------------------------
def test_a_csv_of_glosses_and_its_parquet_and_jsonl_copies_give_one_run(tmp_path: Path) -> None:
    chosen = write_glosses_csv(tmp_path / "glosses.csv", 30)
    table = pd.read_csv(tmp_path / "glosses.csv")
    table.to_parquet(tmp_path / "glosses.parquet")
    table.to_json(tmp_path / "glosses.jsonl", orient="records", lines=True)
    model = ee.load_model(f"st:{minilm_dir()}")
    runs = [
        ee.explore(
            model,
            ee.load_data(tmp_path / f"glosses.{suffix}", model, label_column="category"),
            ["0.model.encoder.layer.0"],
            out=tmp_path / suffix,
            progress=False,
        )
        for suffix in ("csv", "parquet", "jsonl")
    ]
    first = runs[0]
    assert [first.rendering(i).decode() for i in range(30)] == [g.text for g in chosen]  # type: ignore[union-attr]
    names = sorted({ee_name for ee_name in table["category"]})
    assert first.label_names == names
    assert [names[y] for y in first.labels] == table["category"].tolist()  # type: ignore[union-attr]
    assert first.metadata["pos"].tolist() == [g.pos for g in chosen]
    for other in runs[1:]:
        np.testing.assert_array_equal(
            np.asarray(other["0.model.encoder.layer.0"].activations),
            np.asarray(first["0.model.encoder.layer.0"].activations),
        )


def test_a_table_of_image_paths_with_labels(tmp_path: Path) -> None:
    paths = write_image_folder(tmp_path / "images", 12, classes=False)
    _, labels = fashion_images(12)
    pd.DataFrame(
        {
            "path": [f"images/{p.name}" for p in paths],
            "kind": [folder_name(y) for y in labels],
            "score": range(12),
        }
    ).to_csv(tmp_path / "images.csv", index=False)
    data = ee.load_data(tmp_path / "images.csv", image_column="path", label_column="kind")
    run = ee.explore(pool_net(), data, ["3"], out=tmp_path / "run", progress=False)
    assert [run.label_names[y] for y in run.labels] == [folder_name(y) for y in labels]  # type: ignore[index, union-attr]
    assert run.metadata["score"].tolist() == list(range(12))
    x = torch.stack([DefaultTransform()(Image.open(p)) for p in paths])
    with torch.no_grad():
        np.testing.assert_allclose(np.asarray(run["3"].activations), pool_net()(x).numpy(), atol=1e-5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"text_column": "gloss"},
            r"--text-column 'gloss' is not a column of .*glosses.csv; its columns: text, category",
        ),
        ({"label_column": "lexname"}, r"--label-column 'lexname' is not a column"),
        ({"image_column": "file"}, r"--image-column 'file' is not a column"),
    ],
)
def test_a_column_not_in_the_file_is_named(tmp_path: Path, options: dict[str, str], message: str) -> None:
    write_glosses_csv(tmp_path / "glosses.csv", 12)
    with pytest.raises(ee.SpecError, match=message):
        ee.load_data(tmp_path / "glosses.csv", **options)  # type: ignore[arg-type]


def test_table_errors_name_the_row_or_what_is_missing(tmp_path: Path) -> None:
    pd.DataFrame({"path": ["a.png"], "x": [1]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ee.SpecError, match=r"row 0 names the image 'a.png', but there is no file"):
        ee.load_data(tmp_path / "t.csv", image_column="path")
    with pytest.raises(ee.SpecError, match=r"say which column holds the samples .* its columns: path, x"):
        ee.load_data(tmp_path / "t.csv")
    write_glosses_csv(tmp_path / "g.csv", 12)
    with pytest.raises(ee.SpecError, match=r"texts need a model with a tokenizer"):
        ee.load_data(tmp_path / "g.csv")
    model = ee.load_model(f"{write_net(tmp_path)}:build")
    with pytest.raises(ee.SpecError, match=r"has no tokenizer, so it cannot read texts"):
        ee.load_data(tmp_path / "g.csv", model)


# ---- Hugging Face data sets ----------------------------------------------------------------------
def test_a_saved_dataset_of_texts_equals_the_same_table(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    chosen = write_glosses_csv(tmp_path / "glosses.csv", 24)
    categories = sorted({g.category for g in chosen})
    features = datasets.Features(
        {
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=[str(c) for c in categories]),
            "pos": datasets.Value("string"),
        }
    )
    saved = datasets.Dataset.from_dict(
        {
            "text": [g.text for g in chosen],
            "label": [categories.index(g.category) for g in chosen],
            "pos": [g.pos for g in chosen],
        },
        features=features,
    )
    saved.save_to_disk(str(tmp_path / "saved"))
    model = ee.load_model(f"st:{minilm_dir()}")
    run = ee.explore(
        model,
        ee.load_data(tmp_path / "saved", model),
        ["0.model.encoder.layer.0"],
        out=tmp_path / "a",
        progress=False,
    )
    table = ee.explore(
        model,
        ee.load_data(tmp_path / "glosses.csv", model),
        ["0.model.encoder.layer.0"],
        out=tmp_path / "b",
        progress=False,
    )
    assert run.label_names == [str(c) for c in categories]
    assert run.labels.tolist() == [categories.index(g.category) for g in chosen]  # type: ignore[union-attr]
    assert run.metadata["pos"].tolist() == [g.pos for g in chosen]
    np.testing.assert_array_equal(
        np.asarray(run["0.model.encoder.layer.0"].activations),
        np.asarray(table["0.model.encoder.layer.0"].activations),
    )


def test_a_saved_dataset_of_images_and_its_splits(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    images, labels = fashion_images(16)
    split = datasets.Dataset.from_dict(
        {"image": [Image.fromarray(x) for x in images], "label": labels.tolist()},
        features=datasets.Features(
            {"image": datasets.Image(), "label": datasets.ClassLabel(names=list(fashion_mnist.CLASSES))}
        ),
    )
    datasets.DatasetDict({"test": split, "extra": split.select(range(4))}).save_to_disk(
        str(tmp_path / "saved")
    )
    with pytest.raises(ee.SpecError, match=r"choose a split with --split; its splits: test, extra"):
        ee.load_data(tmp_path / "saved")
    run = ee.explore(
        pool_net(),
        ee.load_data(tmp_path / "saved", split="test"),
        ["3"],
        out=tmp_path / "run",
        progress=False,
    )
    assert run.label_names == list(fashion_mnist.CLASSES) and run.labels.tolist() == labels.tolist()  # type: ignore[union-attr]
    shown = np.asarray(Image.open(io.BytesIO(as_png(run.rendering(5)))))  # type: ignore[arg-type]
    np.testing.assert_array_equal(shown, images[5])
    x = torch.stack([DefaultTransform()(Image.fromarray(im)) for im in images])
    with torch.no_grad():
        np.testing.assert_allclose(np.asarray(run["3"].activations), pool_net()(x).numpy(), atol=1e-5)


# ---- the registry --------------------------------------------------------------------------------
def test_a_registered_data_kind_reads_its_specs(tmp_path: Path) -> None:
    np.save(tmp_path / "points.npy", np.arange(40, dtype=np.float32).reshape(10, 4))

    def load(spec: str, model: object, options: object) -> LoadedData:
        array = torch.from_numpy(np.load(spec))
        return LoadedData(array, spec, "npy", len(array))

    before = list(DATA_KINDS)
    register_data_kind(DataKind("npy", lambda spec: spec.endswith(".npy"), load, "arrays (.npy)"), first=True)
    try:
        assert DATA_KINDS[0].name == "npy"
        run = ee.explore(None, str(tmp_path / "points.npy"), ["input"], out=tmp_path / "run", progress=False)
        np.testing.assert_array_equal(np.asarray(run["input"].activations), np.load(tmp_path / "points.npy"))
        (tmp_path / "nothing").mkdir()
        with pytest.raises(ee.SpecError, match=r"no arrays \(.npy\) or images"):
            ee.load_data(tmp_path / "nothing")
    finally:
        DATA_KINDS[:] = before


# ---- what the loaders refuse or convert ----------------------------------------------------------
def test_empty_or_missing_texts_are_refused_naming_the_column_and_rows(tmp_path: Path) -> None:
    texts = ["a cat", "", "a dog", None, "   ", "a bird"]
    pd.DataFrame({"text": texts, "label": list("abcabc")}).to_parquet(tmp_path / "t.parquet")
    model = ee.load_model(f"hf:{minilm_dir()}")
    with pytest.raises(ee.SpecError) as raised:
        ee.load_data(tmp_path / "t.parquet", model)
    assert str(raised.value) == (
        f"data {tmp_path / 't.parquet'}: the text column 'text' has 3 empty or missing value(s), "
        "in row(s) 1, 3, 4; drop or fill those rows"
    )
    pd.DataFrame({"text": ["a cat", "a dog", "a bird"]}).to_csv(tmp_path / "full.csv", index=False)
    assert ee.load_data(tmp_path / "full.csv", model).n_samples == 3


def test_options_a_kind_of_data_does_not_read_are_refused_by_name(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "images", 4)
    with pytest.raises(ee.SpecError) as raised:
        ee.load_data(tmp_path / "images", label_column="kind", text_column="caption")
    assert str(raised.value) == (
        f"data '{tmp_path / 'images'}' is a folder of images (class subfolders are its labels): "
        "--text-column, --labels do not apply to it; drop them"
    )
    paths = write_image_folder(tmp_path / "images", 4)
    pd.DataFrame({"image": [str(p) for p in paths]}).to_csv(tmp_path / "t.csv", index=False)
    assert ee.load_data(tmp_path / "t.csv").n_samples == 4
    with pytest.raises(ee.SpecError, match=r"is a table \(it has no splits\): --split does not apply to it"):
        ee.load_data(tmp_path / "t.csv", split="test")


def test_a_16_bit_png_keeps_its_contrast(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 30 * 40).reshape(30, 40).astype(np.uint16)
    (tmp_path / "deep").mkdir()
    Image.fromarray(ramp).save(tmp_path / "deep" / "ramp.png")
    Image.fromarray((255 - ramp // 257).astype(np.uint8)).save(tmp_path / "deep" / "ramp8.png")
    with Image.open(tmp_path / "deep" / "ramp.png") as saved:
        assert saved.mode == "I;16"
    expected = np.rint(ramp / 257).astype(np.uint8)  # 0 stays black, 65535 becomes 255
    files = ee.load_data(tmp_path / "deep").data
    original = files.original(0)
    np.testing.assert_array_equal(np.asarray(original.convert("L")), expected)  # not clipped to white
    assert original.mode == "L"
    run = ee.explore(pool_net(), tmp_path / "deep", ["1"], out=tmp_path / "run", progress=False)
    shown = np.asarray(Image.open(io.BytesIO(as_png(run.rendering(0)))))  # type: ignore[arg-type]
    np.testing.assert_array_equal(shown, expected)
    x = DefaultTransform()(Image.fromarray(expected))  # the model sees the scaled image too
    conv_relu = nn.Sequential(*list(pool_net().children())[:2])
    with torch.no_grad():
        expected_activations = conv_relu(x[None]).mean((2, 3)).numpy()
    np.testing.assert_allclose(np.asarray(run["1"].activations)[:1], expected_activations, atol=1e-5)


def test_32_bit_and_float_images_are_scaled_or_refused_by_name() -> None:
    from embedding_explorer.specs.images import as_8bit

    as_16 = Image.fromarray(np.array([[0, 65535]], dtype=np.int32), mode="I")
    np.testing.assert_array_equal(np.asarray(as_8bit(as_16, "x")), [[0, 255]])
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), mode="F")
    np.testing.assert_array_equal(np.asarray(as_8bit(unit, "x")), [[0, 128, 255]])
    wide = Image.fromarray(np.array([[-3.0, 700.0]], dtype=np.float32), mode="F")
    with pytest.raises(ee.SpecError) as raised:
        as_8bit(wide, "image a.png (sample 4)")
    assert str(raised.value) == (
        "image a.png (sample 4) is a floating-point image (PIL mode F) with values -3..700, outside "
        "0..1 or 0..255: scale it to 8 or 16 bits first (only those are read)"
    )
    # 8-bit values in a 32-bit or float file (a TIFF) are read as they are, not darkened or refused
    for mode, dtype in (("I", np.int32), ("F", np.float32)):
        eight = Image.fromarray(np.array([[0, 17, 200, 255]], dtype=dtype), mode=mode)
        np.testing.assert_array_equal(np.asarray(as_8bit(eight, "x")), [[0, 17, 200, 255]])


def test_an_image_too_large_to_decode_is_named_with_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_image_folder(tmp_path / "images", 3, classes=False)  # 28 x 28 = 784 pixels
    files = ee.load_data(tmp_path / "images").data
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # over twice the limit: PIL refuses it
    with pytest.raises(ee.SpecError) as raised:
        files.original(1)
    message = str(raised.value)
    assert message.startswith(f"image {files.paths[1]} (sample 1) is too large to decode safely: ")
    assert "raise PIL.Image.MAX_IMAGE_PIXELS (now 300)" in message and "\n" not in message


def test_hidden_subfolders_are_no_class(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "images", 6)
    write_image_folder(tmp_path / "images" / ".thumbs", 2, classes=False)
    loaded = ee.load_data(tmp_path / "images")
    assert loaded.n_samples == 6 and ".thumbs" not in (loaded.label_names or [])


def test_the_exif_orientation_of_a_photo_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = 255  # white left half
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    (tmp_path / "photos").mkdir()
    Image.fromarray(pixels).save(tmp_path / "photos" / "turned.jpg", exif=exif, quality=95)
    turned = ee.load_data(tmp_path / "photos").data.original(0)
    assert turned.size == (20, 40)  # width 20, height 40: upright
    grey = np.asarray(turned.convert("L"), dtype=np.float32)
    assert grey[:18].mean() > 240 and grey[22:].mean() < 15  # the white half is on top


def test_a_missing_image_in_a_data_set_names_the_row_and_the_column(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    images, labels = fashion_images(4)
    column: list[Image.Image | None] = [Image.fromarray(x) for x in images]
    column[2] = None
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    saved = datasets.Dataset.from_dict({"image": column, "label": labels.tolist()}, features=features)
    saved.save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(ee.SpecError) as raised:
        ee.explore(pool_net(), ee.load_data(tmp_path / "saved"), ["1"], out=tmp_path / "run", progress=False)
    assert str(raised.value) == (
        f"data {tmp_path / 'saved'}: row 2 has no image in column 'image' (it is missing); "
        "drop or fill that row"
    )


def test_a_data_set_of_images_alone_keeps_its_rows(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    images, _ = fashion_images(4)
    features = datasets.Features({"image": datasets.Image()})
    saved = datasets.Dataset.from_dict({"image": [Image.fromarray(x) for x in images]}, features=features)
    saved.save_to_disk(str(tmp_path / "saved"))
    loaded = ee.load_data(tmp_path / "saved")
    assert loaded.n_samples == 4 and loaded.label_names is None
    np.testing.assert_array_equal(np.asarray(loaded.data.original(3)), images[3])
