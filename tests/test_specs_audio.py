"""Audio folders as data specs: sine waves per class folder, a waveform model from a file, the
stored clips (WAV) and their spectrograms, the server's answers, and a folder with no audio."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from torch import nn

import embedding_explorer as ee
from embedding_explorer import cli
from embedding_explorer.clips import AUDIO, CLIP_RATE, CLIP_SECONDS, SPECTROGRAM_HEIGHT, SPECTROGRAM_WIDTH
from embedding_explorer.server import create_app
from embedding_explorer.specs.audio import DEFAULT_RATE, DEFAULT_SECONDS
from specs_support import TONES, WAVE_NET, leftovers, write_audio_folder

sf = pytest.importorskip("soundfile")


def expected_waveform(path: Path, rate: int = DEFAULT_RATE) -> np.ndarray:
    """The decoding the spec documents, computed independently: mono, 16 kHz, first second."""
    from scipy.signal import resample_poly

    data, file_rate = sf.read(str(path), always_2d=True)
    mono = data.mean(axis=1)
    if file_rate != rate:
        g = np.gcd(file_rate, rate)
        mono = resample_poly(mono, rate // g, file_rate // g)
    out = np.zeros(int(rate * DEFAULT_SECONDS), np.float32)
    out[: min(len(mono), len(out))] = mono[: len(out)]
    return out


def build_wave_net() -> nn.Module:
    scope: dict[str, object] = {}
    exec(WAVE_NET, scope)
    model = scope["build"]()  # type: ignore[operator]
    assert isinstance(model, nn.Module)
    return model


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("in")
    (folder / "net.py").write_text(WAVE_NET)
    write_audio_folder(folder / "tones")
    return folder


@pytest.fixture(scope="module")
def run(files: Path, tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    out = tmp_path_factory.mktemp("runs") / "tones"
    return ee.explore(f"{files}/net.py:build", files / "tones", ["0", "2"], out=out, progress=False)


@pytest.fixture(scope="module")
def client(run: ee.Run, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(create_app([run], static_dir=tmp_path_factory.mktemp("no-ui"))) as c:
        yield c


def test_activations_equal_a_hand_forward_pass_over_the_decoded_waveforms(files: Path, run: ee.Run) -> None:
    paths = sorted((files / "tones").glob("*/*"))
    x = torch.from_numpy(np.stack([expected_waveform(p) for p in paths]))
    assert x.shape == (12, 16_000)
    net = build_wave_net()
    with torch.no_grad():
        np.testing.assert_allclose(np.asarray(run["0"].activations), net[0](x).numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(np.asarray(run["2"].activations), net[:3](x).numpy(), atol=1e-5)


def test_class_folders_become_labels_and_files_metadata(files: Path, run: ee.Run) -> None:
    paths = sorted((files / "tones").glob("*/*"))
    assert run.label_names == sorted(TONES)
    assert [run.label_names[y] for y in run.labels] == [p.parent.name for p in paths]  # type: ignore[union-attr]
    assert run.metadata["file"].tolist() == [f"{p.parent.name}/{p.name}" for p in paths]
    assert run.rendering_kind == AUDIO


def test_each_rendering_is_the_clip_as_a_wav(files: Path, run: ee.Run) -> None:
    from scipy.signal import resample_poly

    paths = sorted((files / "tones").glob("*/*"))
    for i in (0, 5, 11):
        data, rate = sf.read(io.BytesIO(run.rendering(i)), dtype="float64")  # type: ignore[arg-type]
        assert rate == CLIP_RATE and data.ndim == 1
        assert len(data) == int(CLIP_RATE * min(CLIP_SECONDS, DEFAULT_SECONDS))
        expected = resample_poly(expected_waveform(paths[i]).astype(np.float64), 1, 2)
        np.testing.assert_allclose(data, expected, atol=1.5 / 32768)  # 16-bit rounding


def test_the_server_plays_the_wav_and_shows_its_spectrogram(client: TestClient, run: ee.Run) -> None:
    info = client.get("/api/runs").json()[0]
    assert info["rendering_kind"] == "audio/wav"
    wav = client.get(f"/api/runs/{info['id']}/samples/4/render")
    assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
    assert wav.content == run.rendering(4)
    png = client.get(f"/api/runs/{info['id']}/samples/4/render", params={"spectrogram": "true"})
    assert png.headers["content-type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(png.content)))
    assert image.shape == (SPECTROGRAM_HEIGHT, SPECTROGRAM_WIDTH, 3)
    both = client.get(f"/api/runs/{info['id']}/renderings", params={"ids": "4,8"}).json()
    assert both["kind"] == "audio/wav"
    assert both["items"][0]["data_url"].startswith("data:image/png;base64,")


def test_the_spectrogram_shows_each_tone_at_its_pitch(client: TestClient, run: ee.Run) -> None:
    """The brightest row of each clip's spectrogram is its tone's frequency (row 0 is 4 kHz)."""
    run_id = client.get("/api/runs").json()[0]["id"]
    for i in range(run.n_samples):
        png = client.get(f"/api/runs/{run_id}/samples/{i}/render", params={"spectrogram": "true"}).content
        grey = np.asarray(Image.open(io.BytesIO(png))).astype(float).sum(axis=2)
        row = int(np.argmax(grey[:, :8].mean(axis=1)))  # the first columns: every clip sounds there
        hz = (SPECTROGRAM_HEIGHT - 0.5 - row) / SPECTROGRAM_HEIGHT * CLIP_RATE / 2
        tone = TONES[run.label_names[int(run.labels[i])]]  # type: ignore[index]
        assert abs(hz - tone) <= CLIP_RATE / 2 / SPECTROGRAM_HEIGHT, (i, hz, tone)


def test_the_command_explores_an_audio_folder(files: Path, run: ee.Run, tmp_path: Path) -> None:
    argv = ["explore", "--model", f"{files}/net.py:build", "--data", str(files / "tones"), "--layers", "0,2"]
    assert cli.main([*argv, "--out", str(tmp_path / "run"), "--quiet"]) == 0
    again = ee.open_run(tmp_path / "run")
    np.testing.assert_array_equal(np.asarray(again["2"].activations), np.asarray(run["2"].activations))
    assert again.rendering(3) == run.rendering(3)


def test_a_folder_without_audio_is_a_one_line_error(
    files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "silent" / "a").mkdir(parents=True)
    (tmp_path / "silent" / "a" / "notes.txt").write_text("no sound here")
    out = tmp_path / "out"
    argv = ["explore", "--model", f"{files}/net.py:build", "--data", str(tmp_path / "silent")]
    assert cli.main([*argv, "--layers", "2", "--out", str(out / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("embedding-explorer: error: ") and err.count("\n") == 1, err
    assert "has no samples" in err and "audio files (.wav, .flac, .ogg)" in err
    assert not out.exists() or leftovers(out) == []


def test_an_unreadable_file_names_itself(files: Path, tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    write_audio_folder(folder, per_class=2)
    (folder / "low" / "01.flac").write_bytes(b"not a flac")
    with pytest.raises(ee.EmbeddingExplorerError, match=r"audio file .*01\.flac cannot be read"):
        ee.explore(f"{files}/net.py:build", folder, ["2"], out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_hidden_subfolder_is_no_class_and_a_column_option_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "tones"
    paths = write_audio_folder(folder, per_class=2)
    (folder / ".cache").mkdir()
    (folder / ".cache" / "00.wav").write_bytes(paths[0].read_bytes())
    loaded = ee.load_data(folder)
    assert loaded.n_samples == len(paths) and loaded.label_names == sorted(TONES)
    with pytest.raises(ee.SpecError, match=r"is a folder of audio files .*: --image-column does not apply"):
        ee.load_data(folder, image_column="image")


def test_an_hf_audio_model_gets_its_feature_extractors_features(files: Path, tmp_path: Path) -> None:
    """A small random wav2vec2 saved with its feature extractor (8 kHz, normalising): the data
    are resampled to 8 kHz and normalised by the extractor, as a hand call of both computes."""
    transformers = pytest.importorskip("transformers")
    folder = tmp_path / "w2v"
    config = transformers.Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2, vocab_size=8,
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.Wav2Vec2Model(config).save_pretrained(folder)
    extractor = transformers.Wav2Vec2FeatureExtractor(sampling_rate=8000, do_normalize=True)
    extractor.save_pretrained(folder)
    layer = "encoder.layers.0"
    run = ee.explore(f"hf:{folder}", files / "tones", [layer], out=tmp_path / "run", progress=False)
    paths = sorted((files / "tones").glob("*/*"))
    waves = [expected_waveform(p, 8000) for p in paths]
    inputs = extractor(waves, sampling_rate=8000, return_tensors="pt")
    model = transformers.Wav2Vec2Model.from_pretrained(folder).eval()
    with torch.no_grad():
        hidden = model(**inputs, output_hidden_states=True).hidden_states[1]
    np.testing.assert_allclose(np.asarray(run[layer].activations), hidden.mean(1).numpy(), atol=1e-4)
    data, rate = sf.read(io.BytesIO(run.rendering(0)))  # type: ignore[arg-type]
    assert rate == CLIP_RATE and len(data) == CLIP_RATE * DEFAULT_SECONDS
