"""The orchestrating process never loads a renderer: they live in the pixel workers only."""

from __future__ import annotations

import subprocess
import sys

RENDERERS = ("pyvips", "av", "vtk", "pyvista", "trimesh", "pypdfium2", "PIL", "numpy")


def test_importing_the_flows_loads_no_renderer() -> None:
    code = (
        "import sys, mediamill.flows.ingest, mediamill.flows.sweeps, mediamill.flows.lifecycle; "
        f"print(','.join(m for m in {RENDERERS!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == ""
