"""The backfill notebook runs top to bottom in a real kernel on a fresh MEDIAMILL_HOME.

The kernel inherits this process's environment: ``MEDIAMILL_HOME`` from the ``home``
fixture and ``PREFECT_API_URL`` from ``prefect_api``, so it reports to the test server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "backfill.ipynb"

pytestmark = pytest.mark.usefixtures("prefect_api")


def _outputs(notebook: Any) -> list[dict[str, Any]]:
    return [output for cell in notebook.cells for output in cell.get("outputs", [])]


def _text(output: dict[str, Any]) -> str:
    if output["output_type"] == "stream":
        return str(output["text"])
    data = output.get("data", {})
    return str(data.get("text/html", "")) + str(data.get("text/plain", ""))


def test_the_notebook_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(not cell.outputs and cell.execution_count is None for cell in code)


def test_the_notebook_validates_backfills_and_shows_thumbnails(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sample folder the notebook makes goes under this test's directory, not /tmp.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )

    client.execute()

    outputs = _outputs(notebook)
    assert not [o for o in outputs if o["output_type"] == "error"]
    text = "\n".join(_text(output) for output in outputs)
    assert "ingested 3 of 5, 2 failed" in text
    assert "manifest line 5: path repeats line 2" in text
    assert "must look like TYPE:ID" in text
    thumbnails = [o for o in outputs if "<figure" in o.get("data", {}).get("text/html", "")]
    (gallery,) = thumbnails
    html = gallery["data"]["text/html"]
    assert html.count('<img src="data:image/') == 3
    assert "data:image/png;base64," in html  # the logo has alpha: a PNG thumb
    assert (home / "catalog.db").exists(), "the notebook used the test's MEDIAMILL_HOME"
