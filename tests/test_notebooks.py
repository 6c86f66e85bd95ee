"""Every notebook in notebooks/ runs headless from top to bottom, in under 2 minutes, and its
figures carry data.

The notebooks' own last cells (tagged ``checks``) assert on the data behind each figure and on
the ground truth where there is one (simulated frames, the sample's truth.json), so a notebook
that runs is a notebook whose numbers are right. Here we add: every cell tagged ``figure``
produced a PNG that is not blank, the committed notebooks carry no outputs, and the
generator script and the committed files agree.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NB_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(p.name for p in NB_DIR.glob("*.ipynb"))
KERNEL = "crystream-nbtest"
TIME_LIMIT = 120.0

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory) -> Path:
    """A kernelspec running this interpreter, so the notebooks see this environment."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "crystream tests", "language": "python"}))
    return root


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _png_is_a_plot(data: str) -> tuple[bool, str]:
    """A decoded PNG of reasonable size whose pixels are not (nearly) all one colour."""
    import base64

    import matplotlib.image as mpimg
    image = mpimg.imread(io.BytesIO(base64.b64decode(data)), format="png")
    h, w = image.shape[:2]
    if h < 150 or w < 150:
        return False, f"{w}x{h} pixels"
    rgb = image[..., :3].reshape(-1, 3)
    background = np.all(np.abs(rgb - rgb[0]) < 0.02, axis=1).mean()
    colours = len(np.unique((rgb * 255).astype(np.uint8), axis=0))
    if background > 0.97 or colours < 20:
        return False, f"{background:.1%} background, {colours} colours"
    return True, f"{w}x{h}, {colours} colours"


def test_notebooks_present():
    assert {"stream-analysis.ipynb", "geometry.ipynb", "quickstart.ipynb",
            "hpc.ipynb"} <= set(NOTEBOOKS)


def test_generator_matches_committed_notebooks():
    """notebooks/*.ipynb are what build_notebooks.py writes (no hand edits, no outputs)."""
    spec = importlib.util.spec_from_file_location("build_notebooks",
                                                  NB_DIR / "build_notebooks.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert set(build.NOTEBOOKS) == set(NOTEBOOKS)
    for name, cells in build.NOTEBOOKS.items():
        on_disk = nbformat.read(NB_DIR / name, as_version=4)
        fresh = build.build(name, cells)
        assert [c.source for c in on_disk.cells] == [c.source for c in fresh.cells], name
        for cell in on_disk.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, (name, cell.id)


def _run_notebook(name: str, kernel_dir: Path, monkeypatch, tmp_path: Path,
                  env: dict[str, str] | None = None) -> None:
    """Execute one notebook (the kernel inherits ``env``) and check its figures and checks."""
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_dir))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("CRYSTREAM_NB_DASHBOARD", "127.0.0.1:0")  # never a fixed port in tests
    monkeypatch.setenv("CRYSTREAM_NB_WORK_DIR", str(tmp_path))
    monkeypatch.setenv("CRYSTREAM_NB_CLUSTER", "local")  # hpc.ipynb: LocalCluster, same calls
    monkeypatch.setenv("CRYSTREAM_NB_FRAMES", "30")  # quickstart/hpc: enough for the checks
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(NB_DIR / name, as_version=4)
    figure_cells = [c for c in nb.cells if "figure" in _tags(c)]
    check_cells = [c for c in nb.cells if "checks" in _tags(c)]
    assert figure_cells and check_cells, f"{name}: needs 'figure' and 'checks' cells"
    assert nb.cells[-1] is check_cells[-1], f"{name}: the checks must come last"

    client = nbclient.NotebookClient(nb, timeout=TIME_LIMIT, kernel_name=KERNEL,
                                     resources={"metadata": {"path": str(NB_DIR)}})
    started = time.monotonic()
    client.execute()  # raises CellExecutionError with the failing cell and traceback
    elapsed = time.monotonic() - started
    assert elapsed < TIME_LIMIT, f"{name} took {elapsed:.0f} s"

    for cell in figure_cells:
        pngs = [o["data"]["image/png"] for o in cell.outputs
                if o.get("output_type") in ("display_data", "execute_result")
                and "image/png" in o.get("data", {})]
        assert pngs, f"{name} cell {cell.id}: no figure output"
        for png in pngs:
            ok, why = _png_is_a_plot(png)
            assert ok, f"{name} cell {cell.id}: figure looks empty ({why})"
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", (name, cell.id)
    text = "".join(o.get("text", "") for o in check_cells[-1].outputs
                   if o.get("output_type") == "stream")
    assert "all checks passed" in text, f"{name}: checks did not finish: {text!r}"
    assert not list(NB_DIR.glob("crystream-hpc")), "a notebook wrote into notebooks/"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_and_plots(name, kernel_dir, monkeypatch, tmp_path):
    _run_notebook(name, kernel_dir, monkeypatch, tmp_path)


def _slurm_ready() -> None:
    """Skip (or, with CRYSTREAM_REQUIRE_SLURM=1 as in CI, fail) without an idle SLURM node."""
    required = os.environ.get("CRYSTREAM_REQUIRE_SLURM") == "1"
    why = None
    if shutil.which("sinfo") is None:
        why = "SLURM is not installed here (no sinfo); .ci/slurm-setup.sh sets it up"
    else:  # a node may still be finishing an earlier test's jobs: give it a minute
        deadline = time.monotonic() + 60
        while True:
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
            if "idle" in out.stdout or "mix" in out.stdout:
                break
            if time.monotonic() > deadline:
                why = f"no idle SLURM node: sinfo says {out.stdout.strip() or out.stderr.strip()}"
                break
            time.sleep(2)
    if why:
        if required:
            pytest.fail(f"CRYSTREAM_REQUIRE_SLURM=1: {why}")
        pytest.skip(why)


@pytest.mark.slurm
def test_hpc_notebook_on_slurm(kernel_dir, monkeypatch, tmp_path):
    """hpc.ipynb with CLUSTER = "jobqueue": two SLURM jobs through dask-jobqueue."""
    _slurm_ready()
    config = tmp_path / "slurm.yaml"
    config.write_text(yaml.safe_dump({
        "system": "slurm",
        "cluster": {"cores": 1, "processes": 1, "memory": "1GB", "walltime": "00:10:00",
                    "log_directory": str(tmp_path / "jobs"),
                    "local_directory": str(tmp_path / "scratch"),
                    "scheduler_options": {"host": "127.0.0.1"}},
        "jobs": 2}))
    _run_notebook("hpc.ipynb", kernel_dir, monkeypatch, tmp_path,
                  {"CRYSTREAM_NB_CLUSTER": "jobqueue", "CRYSTREAM_NB_JOBQUEUE": str(config)})
