"""The example notebook runs top to bottom (quick parameters), as a user would run it."""

from __future__ import annotations

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
