"""The example notebook runs top to bottom (quick parameters), as a user would run it."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from embedding_explorer.demos.fashion_mnist import find_fashion_mnist

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "fashion_mnist.ipynb"

pytestmark = pytest.mark.slow


def test_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("colab", [False, True], ids=["local", "colab"])
def test_the_first_cell_installs_the_package_only_on_colab(
    colab: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The install cell as IPython runs it (its %pip magics transformed), with a shell that records
    the magics: on Colab it installs the package and Animal-MNIST; anywhere else nothing."""
    from IPython.core.inputtransformer2 import TransformerManager

    nb = nbformat.read(NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    magics: list[tuple[str, str]] = []
    shell = types.SimpleNamespace(run_line_magic=lambda name, line: magics.append((name, line)))
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(TransformerManager().transform_cell(cell.source), {"get_ipython": lambda: shell})
    expected = [
        ("pip", "install --quiet embedding-explorer"),
        ("pip", "install --quiet --no-deps animal-mnist"),
    ]
    assert magics == (expected if colab else [])


def test_example_notebook_runs(tmp_path: Path) -> None:
    try:
        find_fashion_mnist(download=False)
    except FileNotFoundError:  # pragma: no cover - the test command installs the data set
        pytest.skip("Fashion-MNIST is not installed")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    parameters = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    parameters.source = f"QUICK = True\nLIMIT = 1000\nOUT = {str(tmp_path)!r}\n"
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert "1,000 test images" in outputs
    assert "PC1 (" in outputs and "low [(" in outputs
    assert "http://127.0.0.1:" in outputs
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
