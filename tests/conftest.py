"""Shared fixtures: small models, small data sets, run folders, the Fashion-MNIST demo's data
folders, and Chromium with the UI servers for the browser tests. Plain helpers (the models' classes,
run comparisons, hand-written runs) are in support.py."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import embedding_explorer as ee
from browser_support import (
    Page,
    chromium,
    inverted_run,
    make_run,
    make_text_run,
    missing_requirements,
    serving,
)
from embedding_explorer.demos import fashion_mnist
from fashion_support import STEMS, make_fake_data
from support import MLP, SmallCNN, TinyTransformer, token_batches

# ---- models ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _checkpoint_at_every_point() -> Iterator[None]:
    """Every checkpoint point of a run takes its checkpoint (runs take seconds here, and a run
    checkpoints at most every ``CHECKPOINT_SECONDS``): the tests of resuming need them. The
    throttle itself is tested in test_extract.py. A patch of its own, which a test's
    ``monkeypatch.undo()`` leaves in place."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("embedding_explorer.extract.CHECKPOINT_SECONDS", 0.0)
        yield


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every test starts from the same torch and numpy seeds."""
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture
def mlp() -> MLP:
    return MLP()


@pytest.fixture
def cnn() -> SmallCNN:
    return SmallCNN()


@pytest.fixture
def transformer() -> TinyTransformer:
    return TinyTransformer()


# ---- data --------------------------------------------------------------------------------------
@pytest.fixture
def xy() -> tuple[torch.Tensor, torch.Tensor]:
    """120 samples of 8 features with labels 0..2."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(120, 8, generator=g)
    y = torch.randint(0, 3, (120,), generator=g)
    return x, y


@pytest.fixture
def xy_dataset(xy: tuple[torch.Tensor, torch.Tensor]) -> TensorDataset:
    return TensorDataset(*xy)


@pytest.fixture
def images() -> tuple[torch.Tensor, torch.Tensor]:
    """60 single-channel 8x8 images in [0, 1] with labels 0..2."""
    g = torch.Generator().manual_seed(2)
    return torch.rand(60, 1, 8, 8, generator=g), torch.randint(0, 3, (60,), generator=g)


@pytest.fixture
def tokens() -> list[dict]:
    return token_batches()


# ---- run folders -------------------------------------------------------------------------------
@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """Where a test's run goes (not created: ``explore`` makes it)."""
    return tmp_path / "runs" / "r"


@pytest.fixture
def explore_quiet(run_dir: Path) -> Callable[..., ee.Run]:
    """``ee.explore`` without a progress bar, into ``run_dir`` unless ``out`` is given."""

    def call(*args: Any, **kwargs: Any) -> ee.Run:
        kwargs.setdefault("out", run_dir)
        kwargs.setdefault("progress", False)
        return ee.explore(*args, **kwargs)

    return call


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """256-row chunks (the minimum), so a few thousand narrow rows span many chunks, checkpoints
    and Dask shards."""
    monkeypatch.setattr("embedding_explorer.store.format.CHUNK_BYTES", 1)


# ---- the Fashion-MNIST demo -------------------------------------------------------------------
@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Keep tests off the real user cache, the environment and the network."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("EMBEDDING_EXPLORER_DATA", raising=False)

    def no_network(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return home


@pytest.fixture
def fake_data(tmp_path: Path) -> Path:
    """A tiny Fashion-MNIST folder (60 training, 20 test images), gzipped."""
    return make_fake_data(tmp_path / "fake")


@pytest.fixture
def real_data() -> Path:
    """The installed Fashion-MNIST (Debian's dataset-fashion-mnist); skips the test without it."""
    folder = fashion_mnist._SYSTEM_DATA_DIR
    if not all((folder / f"{stem}.gz").is_file() for stem in STEMS):
        pytest.skip(f"Fashion-MNIST not installed in {folder} (apt-get install dataset-fashion-mnist)")
    return folder


# ---- the web UI in Chromium (the test_browser_* modules) ----------------------------------------
def _skip_without_browser() -> None:
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, launched once per module (each page gets its own context). Not once per
    session: Playwright's sync API cannot start another one (test_report's) while it runs."""
    _skip_without_browser()
    with chromium() as b:
        yield b


@pytest.fixture(scope="session")
def runs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The UI server over TinyCNN and the synthetic images, bag-of-words texts (no model), and
    another model (seed 1) over the same images (a pair to compare)."""
    _skip_without_browser()
    folder = tmp_path_factory.mktemp("browser")
    runs = [
        make_run(folder / "tiny-cnn"),
        make_text_run(folder / "bag-of-words"),
        make_run(folder / "tiny-cnn-b", seed=1, name="tiny-cnn-b"),
    ]
    with serving(runs) as handle:
        yield handle


@pytest.fixture(scope="session")
def datasets_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The UI server over TinyCNN and the synthetic images, the very same model over the inverted
    images (another data set), and another model (seed 1) over the first images (a pair the
    data-set comparison refuses)."""
    _skip_without_browser()
    folder = tmp_path_factory.mktemp("browser5")
    runs = [
        make_run(folder / "tiny-cnn"),
        inverted_run(folder / "inverted"),
        make_run(folder / "tiny-cnn-b", seed=1, name="tiny-cnn-b"),
    ]
    with serving(runs) as handle:
        yield handle


@pytest.fixture
def server_url(runs_server: Any) -> str:
    """The server a browser test's pages open: ``runs_server``; a module that needs
    ``datasets_server`` overrides this fixture."""
    url: str = runs_server.url
    return url


@pytest.fixture
def ui(browser: Any, server_url: str) -> Iterator[Page]:
    """A fresh page on ``server_url``; the test fails on any console error it did not expect."""
    page = Page(browser, server_url)
    try:
        yield page
        assert page.unexpected_errors() == [], page.errors
    finally:
        page.close()
