"""The example notebook runs headless in a real Jupyter kernel (nbclient + ipykernel): its `inspect` output is
HTML with the shapes table, the FC input and one inline PNG per layer with a time axis."""

from __future__ import annotations

import base64
import re
import struct
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = Path(__file__).with_name("inspect_a_model.ipynb")
STEPS = 6                       # the notebook's longest sequence
TIME_AXIS_LAYERS = ["embedding", "lstm"]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_the_notebook_shows_the_shapes_and_a_heatmap_per_time_layer():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # run from the repository, so the kernel imports this checkout's explorer
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = notebook.cells[-1].outputs
    errors = [output for output in outputs if output.output_type == "error"]
    assert not errors, errors
    html = next(output.data["text/html"] for output in outputs if output.output_type == "execute_result")
    assert '<table class="rnn-explorer-shapes">' in html
    for name in (*TIME_AXIS_LAYERS, "global_average_pooling1d", "dense"):
        assert f"<td>{name}</td>" in html
    assert "FC input of dense" in html and "<script" not in html
    images = re.findall(r'<img alt="([^"]+) over time"[^>]*src="data:image/png;base64,([^"]+)"', html)
    assert [name for name, _ in images] == TIME_AXIS_LAYERS
    for _, encoded in images:
        width, height = png_size(base64.b64decode(encoded))
        assert width % STEPS == 0 and height > 0          # one column of cells per timestep
