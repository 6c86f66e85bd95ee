"""Write the crystream notebooks (stream analysis, geometry, quick start, HPC) with nbformat.

The notebooks are generated from this file so that they can be reviewed as Python and are
committed without outputs. Run ``python notebooks/build_notebooks.py`` after editing.

Conventions the tests rely on (tests/test_notebooks.py):
- a cell tagged ``figure`` must produce at least one image/png output;
- a cell tagged ``checks`` asserts on the data behind every figure (and, where the data has
  one, on the ground truth);
- parameters a test overrides are read from ``CRYSTREAM_NB_*`` environment variables in the
  first code cell of a notebook.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str, *tags: str):
    cell = new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


# --------------------------------------------------------------------------- stream analysis

STREAM_ANALYSIS = [
    md("""
# Analysing a CrystFEL stream with pandas

A stream file (CrystFEL format 2.3, written by `indexamajig` or by `crystream index`) read into
pandas tables: peaks per frame, unit-cell parameter distributions and resolution.

The stream shipped in `data/sample.stream` is unmodified **CrystFEL 0.12.0** output on the 12
simulated frames of the crystream calibration sample (10 crystals of a monoclinic C-centred
cell, 2 blank frames), so everything below works the same on your own indexamajig output.
`data/sample-truth.json` holds the ground truth of the simulation (which frames are hits, and
the true orientation of each crystal); the last cell checks the stream against it.
"""),
    code("""
%matplotlib inline
import json
import os
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from crystream.stream.reader import read_stream

# Parameters (change them for your own data)
STREAM = os.environ.get("CRYSTREAM_NB_STREAM", "data/sample.stream")
TRUTH = os.environ.get("CRYSTREAM_NB_TRUTH", "data/sample-truth.json")  # "" if there is none
"""),
    md("""
## Reading the stream

`read_stream` returns a `Stream`: the header (command line, geometry, target cell, indexing
methods) and one `Chunk` per frame. Damaged chunks are not fatal: they are skipped and listed
in `stream.problems` as `file:line: what`. (CrystFEL's own tools stop reading at the first bad
chunk.) For streams too big for memory, `crystream.stream.reader.iter_chunks` yields the
chunks one at a time.
"""),
    code("""
stream = read_stream(STREAM)
print(f"{STREAM}: {len(stream.chunks)} chunks, {len(stream.problems)} problems")
for problem in stream.problems:
    print("  ", problem)
print("command line:", stream.command_line)
print("indexing methods:", stream.indexing_methods)
if stream.target_cell is not None and stream.target_cell.has_parameters:
    a, b, c, al, be, ga = stream.target_cell.parameters
    print(f"target cell: {a*1e10:.2f} {b*1e10:.2f} {c*1e10:.2f} A, "
          f"{np.degrees(al):.2f} {np.degrees(be):.2f} {np.degrees(ga):.2f} deg, "
          f"{stream.target_cell.lattice_type} {stream.target_cell.centering}")
"""),
    md("""
## Tables

- `stream.peaks_table()`: one row per peak (panel-relative `fs`/`ss`, `intensity`,
  `one_over_d` in m⁻¹);
- `stream.reflections_table()`: one row per integrated reflection (`h k l`, `intensity`,
  `sigma`, `peak`, `background`, position);
- `stream.crystals_table()`: one row per crystal (cell parameters in m and rad, the reciprocal
  basis `astar_x` … `cstar_z` in m⁻¹, profile radius, resolution limit).

Each row carries the frame's `chunk` index, `serial`, `filename` and `event`, so the tables join
on them. We add a per-frame table and convert to Å and degrees.
"""),
    code("""
peaks = pd.DataFrame(stream.peaks_table())
refl = pd.DataFrame(stream.reflections_table())
xtals = pd.DataFrame(stream.crystals_table())

frames = pd.DataFrame({
    "filename": [c.filename for c in stream.chunks],
    "event": [c.event for c in stream.chunks],
    "serial": [c.serial for c in stream.chunks],
    "hit": [bool(c.hit) for c in stream.chunks],
    "num_peaks": [c.num_peaks for c in stream.chunks],
    "indexed_by": [c.indexed_by for c in stream.chunks],
    "crystals": [len(c.crystals) for c in stream.chunks],
    "peak_resolution_A": [1e10 / c.peak_resolution if c.peak_resolution > 0 else np.nan
                          for c in stream.chunks],
})
frames.index.name = "chunk"

for name in ("a", "b", "c"):
    xtals[name + "_A"] = xtals[name] * 1e10
for name in ("alpha", "beta", "gamma"):
    xtals[name + "_deg"] = np.degrees(xtals[name])
xtals["resolution_A"] = 1e10 / xtals["resolution_limit"]
xtals["crystal"] = xtals.groupby("chunk").cumcount()
peaks["d_A"] = 1e10 / peaks["one_over_d"]

n = len(frames)
print(f"{n} frames, {frames.hit.sum()} hits ({frames.hit.mean():.1%}), "
      f"{(frames.crystals > 0).sum()} indexed ({(frames.crystals > 0).mean():.1%}), "
      f"{len(xtals)} crystals, {len(peaks)} peaks, {len(refl)} reflections")
frames
"""),
    md("""
## Peaks per frame

The hit finder's view of the run: the number of peaks per frame, with the `--min-peaks` cut
taken from the command line, and indexed frames in colour. On the right, every peak of the run
on the detector (panel-relative position): hot pixels and badly masked regions stand out as
spots that appear in many frames.
"""),
    code("""
match = re.search(r"--min-peaks[= ](\\d+)", stream.command_line or "")
min_peaks = int(match.group(1)) if match else 0
indexed = frames.crystals > 0

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4), width_ratios=(2, 1))
ax1.bar(frames.index[indexed], frames.num_peaks[indexed], color="tab:blue", label="indexed")
ax1.bar(frames.index[~indexed], frames.num_peaks[~indexed], color="tab:gray",
        label="not indexed")
if min_peaks:
    ax1.axhline(min_peaks, color="tab:red", ls="--", label=f"--min-peaks={min_peaks}")
ax1.set_xlabel("frame (chunk index)")
ax1.set_ylabel("peaks")
ax1.legend()
ax1.set_title("Peaks per frame")

ax2.scatter(peaks.fs, peaks.ss, s=4, c=np.log10(peaks.intensity.clip(lower=1)), cmap="viridis")
ax2.set_xlabel("fs (pixels)")
ax2.set_ylabel("ss (pixels)")
ax2.invert_yaxis()
ax2.set_aspect("equal")
ax2.set_title("All peaks (colour: log10 intensity)")
plt.show()

# the numbers behind the figure, checked at the end
plotted_peaks_per_frame = frames.num_peaks.to_numpy()
plotted_peak_positions = peaks[["fs", "ss"]].to_numpy()
""", "figure"),
    md("""
## Unit-cell parameter distributions

One histogram per cell parameter over all crystals, with the target cell from the stream
header. Broad or double peaks point to a wrong target cell, a wrong geometry (clen, beam
centre) or a mixture of lattices.
"""),
    code("""
target = stream.target_cell
target_values = {}
if target is not None and target.has_parameters:
    tp = target.parameters
    target_values = {"a_A": tp[0] * 1e10, "b_A": tp[1] * 1e10, "c_A": tp[2] * 1e10,
                     "alpha_deg": np.degrees(tp[3]), "beta_deg": np.degrees(tp[4]),
                     "gamma_deg": np.degrees(tp[5])}

fig, axes = plt.subplots(2, 3, figsize=(12, 6))
cell_columns = ["a_A", "b_A", "c_A", "alpha_deg", "beta_deg", "gamma_deg"]
for ax, name in zip(axes.flat, cell_columns):
    values = xtals[name].dropna()
    # at least 2 % of a length or 2 degrees wide, so a sharp distribution stays readable
    ref = target_values.get(name, values.median())
    lo, hi = min(values.min(), ref), max(values.max(), ref)
    half = max((hi - lo) / 2, 0.01 * ref if name.endswith("_A") else 1.0) * 1.1
    ax.hist(values, bins=20, range=((lo + hi) / 2 - half, (lo + hi) / 2 + half),
            color="tab:blue")
    ax.ticklabel_format(axis="x", useOffset=False)
    if name in target_values:
        ax.axvline(target_values[name], color="tab:red", ls="--", label="target")
        ax.legend()
    unit = "A" if name.endswith("_A") else "deg"
    ax.set_xlabel(f"{name.split('_')[0]} ({unit})")
    ax.set_ylabel("crystals")
fig.suptitle(f"Unit-cell parameters of {len(xtals)} crystals")
fig.tight_layout()
plt.show()

xtals[cell_columns].describe().loc[["count", "mean", "std", "min", "max"]]
""", "figure"),
    md("""
## Resolution

Left: the resolution 1/d of every peak found. Middle: the diffraction resolution limit CrystFEL
estimated for each crystal (`diffraction_resolution_limit`). Right: the mean I/σ(I) of the
integrated reflections in resolution shells; the resolution of each reflection comes from its
Miller indices and the crystal's reciprocal basis, |h a* + k b* + l c*| = 1/d.
"""),
    code("""
# 1/d of every reflection: join each reflection with its crystal's reciprocal basis
basis_cols = [f"{v}_{x}" for v in ("astar", "bstar", "cstar") for x in "xyz"]
joined = refl.merge(xtals[["chunk", "crystal"] + basis_cols], on=["chunk", "crystal"])
basis = joined[basis_cols].to_numpy().reshape(-1, 3, 3)           # rows a*, b*, c*
hkl = joined[["h", "k", "l"]].to_numpy(dtype=float)
q = np.einsum("ni,nij->nj", hkl, basis)                           # m^-1, lab frame
joined["d_A"] = 1e10 / np.linalg.norm(q, axis=1)
joined["i_over_sigma"] = joined.intensity / joined.sigma

shells = pd.qcut(1 / joined.d_A, 6)
by_shell = joined.groupby(shells, observed=True).agg(
    d_A=("d_A", "median"), i_over_sigma=("i_over_sigma", "mean"), n=("h", "size"))

fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 4))
ax1.hist(1 / peaks.d_A, bins=25, color="tab:green")
ax1.set_xlabel("peak resolution 1/d (1/A)")
ax1.set_ylabel("peaks")
ax2.bar(xtals.chunk.astype(str), xtals.resolution_A, color="tab:purple")
ax2.set_xlabel("frame (chunk index)")
ax2.set_ylabel("diffraction resolution limit (A)")
ax3.plot(1 / by_shell.d_A, by_shell.i_over_sigma, "o-")
ax3.set_xlabel("shell median 1/d (1/A)")
ax3.set_ylabel("mean I/sigma(I)")
fig.tight_layout()
plt.show()
by_shell
""", "figure"),
    md("""
## Checks

The numbers behind each figure, and the stream against the ground truth of the simulation:
the hit flags, and each crystal's orientation (its reciprocal basis equals the true one, or the
one related by the monoclinic 2-fold axis — a* and c* negated — which describes the same
lattice).
"""),
    code("""
assert not stream.problems, stream.problems
# peaks per frame: every frame plotted, and the peak table agrees with each chunk's num_peaks
assert len(plotted_peaks_per_frame) == len(stream.chunks) > 0
assert plotted_peaks_per_frame.sum() == len(plotted_peak_positions) > 0
assert (peaks.groupby("chunk").size().reindex(frames.index, fill_value=0)
        == frames.num_peaks).all()
# cell histograms: every crystal has a finite cell, close to the target
assert len(xtals) > 0 and np.isfinite(xtals[cell_columns].to_numpy()).all()
for name, value in target_values.items():
    tolerance = 0.03 * value if name.endswith("_A") else 1.5
    assert abs(xtals[name].median() - value) < tolerance, (name, xtals[name].median(), value)
# resolution: finite, inside what the detector can see
assert np.isfinite(peaks.d_A).all() and (peaks.d_A > 1).all()
assert np.isfinite(xtals.resolution_A).all() and len(by_shell) > 0
assert np.isfinite(by_shell.i_over_sigma).all()
# strong reflections are stronger at low resolution (Wilson falloff)
assert by_shell.i_over_sigma.iloc[0] > by_shell.i_over_sigma.iloc[-1]

if TRUTH:
    truth = {t["file"]: t for t in json.load(open(TRUTH))}
    true_hit = frames.filename.map(lambda f: truth[f]["is_hit"])
    assert (frames.hit == true_hit).all(), "hit flags differ from the truth"
    worst = 0.0
    for _, row in xtals.iterrows():
        t = truth[row.filename]
        true_basis = np.array([t["astar_nm^-1"], t["bstar_nm^-1"], t["cstar_nm^-1"]]) * 1e9
        found = row[basis_cols].to_numpy(dtype=float).reshape(3, 3)
        twofold = np.diag([-1.0, 1.0, -1.0]) @ true_basis
        err = min(np.linalg.norm(found - cand, axis=1).max() / np.linalg.norm(cand, axis=1).min()
                  for cand in (true_basis, twofold))
        worst = max(worst, err)
    print(f"worst reciprocal-basis deviation from the truth: {worst:.2%}")
    assert worst < 0.03
print("all checks passed")
""", "checks"),
]


# --------------------------------------------------------------------------- geometry

GEOMETRY = [
    md("""
# A detector geometry, drawn

Load a CrystFEL geometry file, draw its panels in the laboratory frame, then simulate a
diffraction frame on it and draw the assembled image with the beam centre and resolution rings.

`data/pinwheel.geom` is a made-up detector that exercises what matters: four modules rotated by
90° from each other (fs and ss point in different directions on each), a beam that is not at
the centre of the modules, one module further back (`coffset`), and a beamstop bad region.
Replace it with your own geometry file. Before a beamtime, `crystream geometry FILE` checks a
file on the command line (errors name `file:line`) and prints the same panel summary.

Lab frame (CrystFEL's convention): +z along the beam, +y up, +x to complete a right-handed set;
the beam hits the detector plane at x = y = 0 (plus any `detector_shift_x/y`).
"""),
    code("""
%matplotlib inline
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.patches import Polygon, Rectangle

from crystream.geometry.badpixels import bad_pixel_masks
from crystream.geometry.detector import lab_position, panel_resolution_map, scattering_vectors
from crystream.geometry.parser import load_geometry
from crystream.simulate import LYSOZYME, SimulationConfig, simulate_frame

# Parameters
GEOMETRY = os.environ.get("CRYSTREAM_NB_GEOMETRY", "data/pinwheel.geom")
RINGS_A = (8.0, 5.0, 4.0)   # resolution rings to draw, in Angstrom
SEED = 3
"""),
    code("""
det = load_geometry(GEOMETRY)
for warning in det.warnings:
    print("warning:", warning)
wavelength, clen, shift_x, shift_y = det.resolve_beam()   # literal values in this file
print(f"{len(det.panels)} panels, wavelength {wavelength*1e10:.4f} A, clen {clen*1e3:.1f} mm")
pd.DataFrame([{
    "panel": p.name, "size (fs x ss)": f"{p.width} x {p.height}",
    "slab fs": f"{p.min_fs}-{p.max_fs}", "slab ss": f"{p.min_ss}-{p.max_ss}",
    "corner (px)": (p.corner_x, p.corner_y), "fs": tuple(np.round(p.fs, 3)),
    "ss": tuple(np.round(p.ss, 3)), "pixel (um)": p.pixel_pitch * 1e6,
    "coffset (mm)": p.coffset * 1e3} for p in det.panels])
"""),
    md("""
Mistakes in a geometry file stop everything before any frame is read, with the file and line:
"""),
    code("""
from crystream.geometry.parser import GeometryError, parse_geometry

broken_text = det.source_text.replace("m2/fs = -1.0x +0.0y", "m2/fs = -1.0q")
try:
    parse_geometry(broken_text, "broken.geom")
except GeometryError as exc:
    geometry_error = str(exc)
print(geometry_error)
"""),
    md("""
## Panels in the lab frame

Each panel is drawn from its four corners, computed with `lab_position(panel, fs, ss, clen)`
(metres), the same transform the peak search and the prediction use. The arrows show the
panel's fast-scan (fs, solid) and slow-scan (ss, dashed) directions from pixel (0, 0); x/y bad
regions are hatched.
"""),
    code("""
def panel_outline_mm(panel):
    \"\"\"Lab x, y (mm) of the panel's four corners, in drawing order.\"\"\"
    fs = np.array([0, panel.width, panel.width, 0], dtype=float)
    ss = np.array([0, 0, panel.height, panel.height], dtype=float)
    return lab_position(panel, fs, ss, clen, shift_x, shift_y)[:, :2] * 1e3

fig, ax = plt.subplots(figsize=(7, 7))
outlines = {}
for i, p in enumerate(det.panels):
    xy = panel_outline_mm(p)
    outlines[p.name] = xy
    ax.add_patch(Polygon(xy, closed=True, fc=f"C{i}", alpha=0.25, ec=f"C{i}"))
    origin = xy[0]
    scale = 0.35 * min(p.width, p.height) * p.pixel_pitch * 1e3
    ax.annotate("", origin + scale * p.fs[:2], origin,
                arrowprops=dict(arrowstyle="->", color=f"C{i}", lw=2))
    ax.annotate("", origin + scale * p.ss[:2], origin,
                arrowprops=dict(arrowstyle="->", color=f"C{i}", lw=2, ls="--"))
    ax.text(*xy.mean(axis=0), p.name, ha="center", va="center", fontsize=14)
for region in det.bad_regions:
    if region.is_xy:
        pitch = det.panels[0].pixel_pitch * 1e3
        ax.add_patch(Rectangle((region.min_x * pitch, region.min_y * pitch),
                               (region.max_x - region.min_x) * pitch,
                               (region.max_y - region.min_y) * pitch,
                               fill=False, hatch="//", ec="k", label=region.name))
ax.plot(shift_x * 1e3, shift_y * 1e3, "r+", ms=15, mew=2, label="beam")
ax.autoscale_view()
ax.set_aspect("equal")
ax.set_xlabel("x (mm)")
ax.set_ylabel("y (mm)")
ax.legend(loc="upper right")
ax.set_title(f"{os.path.basename(GEOMETRY)}: panels seen from the sample")
plt.show()
""", "figure"),
    md("""
## A simulated frame, assembled

`crystream.simulate` makes a still diffraction frame of lysozyme microcrystals on this geometry
(Ewald-sphere partiality, Wilson intensities, background, Poisson noise), with its ground truth.
Each panel's pixels are drawn at their lab positions with `pcolormesh` (the pixel corners come
from `lab_position`, so rotated panels come out right). The resolution rings are exact contours
of `panel_resolution_map` (|q| = 1/d at every pixel), so they account for `coffset` and tilts.
Open circles: where the simulator put the strongest spots.
"""),
    code("""
sim = SimulationConfig(detector=det, cell=LYSOZYME, spot_photons=4e5, crystal_size=0.4e-6)
frame = simulate_frame(sim, seed=SEED)
masks = bad_pixel_masks(det, frame.data)
truth = frame.truth.crystals[0].reflections
print(f"{sum(d.size for d in frame.data)} pixels, {len(truth)} reflections on the detector, "
      f"{sum(m.sum() for m in masks)} bad pixels (beamstop)")

fig, ax = plt.subplots(figsize=(8, 8))
vmax = max(float(np.percentile(d, 99.9)) for d in frame.data)
ring_sets = []  # (panel, contour set) for the checks
for p, data, bad in zip(det.panels, frame.data, masks):
    ss_c, fs_c = np.mgrid[0:p.height + 1, 0:p.width + 1]
    corners = lab_position(p, fs_c, ss_c, frame.clen, shift_x, shift_y) * 1e3
    shown = np.ma.masked_array(np.clip(data, 1, None), mask=bad)
    mesh = ax.pcolormesh(corners[..., 0], corners[..., 1], shown, cmap="gray_r",
                         norm=LogNorm(vmin=1, vmax=vmax), shading="flat")
    ss_p, fs_p = np.mgrid[0:p.height, 0:p.width] + 0.5
    centres = lab_position(p, fs_p, ss_p, frame.clen, shift_x, shift_y) * 1e3
    d_map = 1e10 / panel_resolution_map(p, frame.clen, frame.wavelength, shift_x, shift_y)
    cs = ax.contour(centres[..., 0], centres[..., 1], d_map, levels=sorted(RINGS_A),
                    colors="tab:red", linewidths=1)
    ax.clabel(cs, fmt="%.0f A", fontsize=8)
    ring_sets.append((p, cs))
strong = np.argsort(truth.intensity_adu)[::-1][:40]
spot_xy = np.array([lab_position(det.panels[truth.panel[i]], truth.fs[i], truth.ss[i],
                                 frame.clen, shift_x, shift_y)[:2] * 1e3 for i in strong])
ax.plot(spot_xy[:, 0], spot_xy[:, 1], "o", mfc="none", mec="tab:orange", ms=9,
        label="40 strongest true spots")
ax.plot(shift_x * 1e3, shift_y * 1e3, "r+", ms=15, mew=2, label="beam centre")
fig.colorbar(mesh, ax=ax, shrink=0.7, label="ADU")
ax.set_aspect("equal")
ax.set_xlabel("x (mm)")
ax.set_ylabel("y (mm)")
ax.legend(loc="upper right")
ax.set_title("Simulated lysozyme frame, resolution rings in red")
plt.show()
""", "figure"),
    md("""
## Checks

Against the simulator's ground truth: the strongest true spots sit on bright pixels of the
assembled panels (so the drawing puts pixels where the geometry says), the resolution of each
spot's position equals the resolution of its lattice point, and the drawn rings lie where
|q| = 1/d.
"""),
    code("""
# the broken line is named by file and line number
broken_line = broken_text.splitlines().index("m2/fs = -1.0q") + 1
assert geometry_error.startswith(f"broken.geom:{broken_line}: "), geometry_error

# every panel drawn, as a closed quadrilateral of the right size
pitch_mm = det.panels[0].pixel_pitch * 1e3
for p in det.panels:
    xy = outlines[p.name]
    sides = np.linalg.norm(np.roll(xy, -1, axis=0) - xy, axis=1)
    assert np.allclose(sides, np.array([p.width, p.height] * 2) * pitch_mm), (p.name, sides)

# the strongest spots are on bright pixels of their panel
for i in strong[:20]:
    data = frame.data[truth.panel[i]]
    value = data[int(truth.ss[i]), int(truth.fs[i])]
    assert value > np.percentile(data, 99), (i, value)

# the resolution at each spot's position equals |q| of its lattice point (to 1%)
q_pos = np.array([np.linalg.norm(scattering_vectors(det.panels[truth.panel[i]], truth.fs[i],
                                                    truth.ss[i], frame.clen, frame.wavelength))
                  for i in range(len(truth))])
q_true = np.linalg.norm(truth.q, axis=1)
assert np.allclose(q_pos, q_true, rtol=0.01), np.abs(q_pos / q_true - 1).max()

# the rings: every vertex of a drawn contour has 1/|q| = the ring's d (to 0.5%)
ring_points = 0
for p, cs in ring_sets:
    for level, segments in zip(cs.levels, cs.allsegs):
        for seg in segments:
            r = np.column_stack([seg / 1e3, np.full(len(seg), frame.clen + p.coffset)])
            q = r / (frame.wavelength * np.linalg.norm(r, axis=1, keepdims=True))
            q[:, 2] -= 1 / frame.wavelength
            assert np.allclose(1e10 / np.linalg.norm(q, axis=1), level, rtol=0.005), level
            ring_points += len(seg)
assert ring_points > 100, ring_points
ring_radius_mm = {d: frame.clen * np.tan(2 * np.arcsin(frame.wavelength / (2 * d * 1e-10))) * 1e3
                  for d in RINGS_A}
for d, r in ring_radius_mm.items():
    print(f"{d:.0f} A ring: {r:.2f} mm from the beam (flat detector at clen)")
assert len(spot_xy) == 40 and np.isfinite(spot_xy).all()
print("all checks passed")
""", "checks"),
]

# --------------------------------------------------------------------------- quick start

QUICKSTART = [
    md("""
# Quick start: a live stream, processed on a Dask cluster

This notebook does, from Python, what `crystream index` does on the command line:

1. start a local Dask cluster (worker processes, with the dashboard),
2. start a detector stream — here the crystream simulator behind a ZeroMQ REP socket, as
   OnDA/OM would serve frames — and
3. process it with a *flow*: peak search, indexing and integration of every frame, written to
   a CrystFEL stream file in frame order,
4. watch its progress, then plot hit and indexing rates, unit-cell histograms, and one frame
   with its peaks and predicted reflections.

Because the frames are simulated, we know the truth (which frames have a crystal and how it is
oriented), and the last cell checks the results against it.
"""),
    code("""
%matplotlib inline
import os
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm

from cluster import get_cluster
from crystream.cellfile import format_cell, load_cell
from crystream.cellmatch import misorientation
from crystream.geometry.parser import load_geometry
from crystream.indexing import IndexingOptions
from crystream.integration import IntegrationOptions
from crystream.peaks import PeakSearchOptions
from crystream.pipeline import PipelineConfig
from crystream.simulate import LYSOZYME, SimulationConfig, simple_detector, simulate_frames
from crystream.stream.reader import read_stream
from flows.config import FlowConfig
from flows.run import start_flow
from flows.summary import final_summary
from readers.options import InputOptions
from readers.sender import FrameServer

# Parameters
N_FRAMES = int(os.environ.get("CRYSTREAM_NB_FRAMES", "60"))
WORKERS = int(os.environ.get("CRYSTREAM_NB_WORKERS", "2"))
DASHBOARD = os.environ.get("CRYSTREAM_NB_DASHBOARD", "127.0.0.1:8787")  # ":0" = any free port
WORK_DIR = os.environ.get("CRYSTREAM_NB_WORK_DIR") or tempfile.mkdtemp(prefix="crystream-")
print("writing to", WORK_DIR)
"""),
    md("""
## The experiment: detector, crystal and frames

A 512 × 512 detector, 75 µm pixels, 80 mm from the sample, 9.5 keV photons, whose geometry file
takes the photon energy and distance from each frame's header (`beam_energy`, in eV, and
`detector_distance`, in mm: the keys OnDA/OM send). Crystals of hen egg-white lysozyme, 70 % of
the frames hit. The geometry and cell files are written to disk, as you would pass them with
`-g` and `-p`.
"""),
    code("""
sim_detector = simple_detector(n=512, pixel=75e-6, clen=0.080, photon_energy=9500,
                               header_values=True)
geometry_file = os.path.join(WORK_DIR, "simulated.geom")
cell_file = os.path.join(WORK_DIR, "lysozyme.cell")
with open(geometry_file, "w") as fh:
    fh.write(sim_detector.source_text + "\\n")
with open(cell_file, "w") as fh:
    fh.write(format_cell(LYSOZYME))
detector = load_geometry(geometry_file)
target = load_cell(cell_file)
print(open(cell_file).read())

simulation = SimulationConfig(detector=detector, cell=LYSOZYME, photon_energy=9500,
                              clen=0.080, hit_rate=0.7, spot_photons=3e5)
frames = []
for frame in simulate_frames(simulation, N_FRAMES, seed=7):
    frame.headers["frame_id"] = frame.serial   # sent with the frame, copied into the stream
    frames.append(frame)
print(f"{len(frames)} frames simulated, {sum(f.truth.is_hit for f in frames)} with a crystal")
"""),
    md("""
## Start a cluster and the stream

`cluster.get_cluster(workers=...)` starts a `LocalCluster` of single-threaded worker processes
(the same call takes `scheduler="tcp://host:8786"` for an existing cluster, or
`jobqueue="cluster.yaml"` for SLURM and other batch systems: see `hpc.ipynb`). The dashboard
link opens Dask's dashboard; the flow adds a **crystream** page to it with frames/s, hit and
indexing rates, peaks per frame, latency and live unit-cell histograms.

The sender is `readers.sender.FrameServer`, the engine of `crystream serve`: a ZeroMQ REP socket
that answers each request with one frame, encoded as OnDA's msgpack.
"""),
    code("""
cluster = get_cluster(workers=WORKERS, dashboard_address=DASHBOARD)
print("dashboard:", cluster.dashboard_link)

server = FrameServer(frames, detector, bind="tcp://127.0.0.1:*", mode="rep",
                     data_format="msgpack", rate=30)
server.start()
print("frames served at", server.endpoint)
"""),
    md("""
## Run the flow

A `FlowConfig` holds what a `crystream index` command line says; the stage options are
dataclasses whose field names are indexamajig's option names. This one is the equivalent of

```
crystream index --zmq-input=tcp://127.0.0.1:PORT --zmq-request=next --data-format=msgpack \\
    --copy-header=frame_id -g simulated.geom -p lysozyme.cell -o quickstart.stream -j 2 \\
    --peaks=peakfinder8 --threshold=6 --min-snr=4 --min-pix-count=2 --max-pix-count=50 \\
    --local-bg-radius=3 --min-peaks=10 --int-radius=3,4,5
```

`start_flow` returns at once with a `FlowHandle`: `counters` (a dict of live numbers),
`wait()`, `stop()` (finish the frames in flight and close the stream cleanly) and `close()`.
A ZeroMQ stream never ends by itself; `frames_limit` stops this one after `N_FRAMES` frames.
"""),
    code("""
peaks_options = PeakSearchOptions(peaks="peakfinder8", threshold=6, min_snr=4,
                                  min_pix_count=2, max_pix_count=50, local_bg_radius=3,
                                  min_peaks=10)
config = FlowConfig(
    source="zmq_req", geometry=geometry_file, cell=cell_file,
    output=os.path.join(WORK_DIR, "quickstart.stream"),
    input=InputOptions(zmq_input=server.endpoint, zmq_request="next", data_format="msgpack",
                       copy_header=("frame_id",)),
    pipeline=PipelineConfig(peaks=peaks_options, indexing=IndexingOptions(),
                            integration=IntegrationOptions(int_radius=(3, 4, 5))),
    workers=WORKERS, progress=False, frames_limit=N_FRAMES)
flow = start_flow(config, cluster=cluster)
print("crystream dashboard page:", flow.dashboard_link)
"""),
    md("""
### Watching it

Poll `flow.counters` (the same numbers as the dashboard page and the terminal progress line).
Here we keep a history for a plot, and print indexamajig's status line now and then.
"""),
    code("""
from flows.summary import status_line

history = []
last_print = 0.0
while not flow.finished:
    snap = flow.counters
    if snap:
        history.append({k: snap[k] for k in ("elapsed", "processed", "hits", "indexed",
                                              "rate", "in_flight")})
        if time.time() - last_print > 2:
            print(status_line(snap))
            last_print = time.time()
    time.sleep(0.25)
final = flow.wait(60)
history.append({k: final[k] for k in ("elapsed", "processed", "hits", "indexed", "rate",
                                      "in_flight")})
print(final_summary(final))
flow.close()     # shuts down the cluster it runs on, too
server.stop()
history = pd.DataFrame(history)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.5))
for name in ("processed", "hits", "indexed"):
    ax1.plot(history.elapsed, history[name], label=name)
ax1.set_xlabel("time since start (s)")
ax1.set_ylabel("frames")
ax1.legend()
ax2.plot(history.elapsed, history.rate, label="frames/s")
ax2.plot(history.elapsed, history.in_flight, label="frames in flight")
ax2.set_xlabel("time since start (s)")
ax2.legend()
fig.suptitle("Progress of the flow")
plt.show()
""", "figure"),
    md("""
## Results: the stream file

The output is a CrystFEL stream, readable by CrystFEL's tools (`partialator`, `check_hkl`…) and
by `crystream.stream.reader`. Chunks are in frame order. The `frame_id` header we sent with each
frame (`--copy-header`) tells which simulated frame each chunk is.
"""),
    code("""
stream = read_stream(config.output)
frame_id = [int(dict(c.headers)["frame_id"]) for c in stream.chunks]
results = pd.DataFrame({
    "frame_id": frame_id,
    "hit": [c.hit for c in stream.chunks],
    "num_peaks": [c.num_peaks for c in stream.chunks],
    "indexed": [len(c.crystals) > 0 for c in stream.chunks],
    "true_hit": [frames[i - 1].truth.is_hit for i in frame_id],
})
xtals = pd.DataFrame(stream.crystals_table())
xtals["frame_id"] = [frame_id[i] for i in xtals.chunk]
for name in ("a", "b", "c"):
    xtals[name + "_A"] = xtals[name] * 1e10
for name in ("alpha", "beta", "gamma"):
    xtals[name + "_deg"] = np.degrees(xtals[name])
peaks = pd.DataFrame(stream.peaks_table())
refl = pd.DataFrame(stream.reflections_table())
print(f"{len(stream.chunks)} chunks, {results.hit.sum()} hits, {results.indexed.sum()} indexed,"
      f" {len(refl)} reflections")

# hit and indexing rates: running values over the run, and per block of 10 frames
order = results.sort_values("frame_id")
running = pd.DataFrame({"hit rate": order.hit.expanding().mean(),
                        "indexing rate": order.indexed.expanding().mean()})
blocks = order.groupby((order.frame_id - 1) // 10).agg(hit=("hit", "mean"),
                                                        indexed=("indexed", "mean"))
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.5))
ax1.plot(order.frame_id, running["hit rate"], label="hit rate")
ax1.plot(order.frame_id, running["indexing rate"], label="indexing rate")
ax1.axhline(simulation.hit_rate, color="gray", ls=":", label="simulated hit rate")
ax1.set_ylim(0, 1.05)
ax1.set_xlabel("frame")
ax1.set_ylabel("running rate")
ax1.legend()
width = 0.4
ax2.bar(blocks.index - width / 2, blocks.hit, width, label="hits")
ax2.bar(blocks.index + width / 2, blocks.indexed, width, label="indexed")
ax2.set_xticks(blocks.index, [f"{10*i+1}-{10*i+10}" for i in blocks.index])
ax2.set_xlabel("frames")
ax2.set_ylabel("fraction")
ax2.legend()
fig.suptitle("Hit and indexing rates")
plt.show()
""", "figure"),
    md("""
## Unit-cell histograms

The same histograms as on the dashboard page, from the stream, with the target cell.
"""),
    code("""
cell_columns = ["a_A", "b_A", "c_A", "alpha_deg", "beta_deg", "gamma_deg"]
tp = target.parameters
target_values = dict(zip(cell_columns, [tp[0] * 1e10, tp[1] * 1e10, tp[2] * 1e10,
                                        *np.degrees(tp[3:])]))
fig, axes = plt.subplots(2, 3, figsize=(12, 6))
for ax, name in zip(axes.flat, cell_columns):
    ref, values = target_values[name], xtals[name]
    lo, hi = min(values.min(), ref), max(values.max(), ref)
    half = max((hi - lo) / 2, 0.01 * ref if name.endswith("_A") else 1.0) * 1.1
    ax.hist(values, bins=20, range=((lo + hi) / 2 - half, (lo + hi) / 2 + half))
    ax.ticklabel_format(axis="x", useOffset=False)
    ax.axvline(target_values[name], color="tab:red", ls="--", label="target")
    ax.set_xlabel(name.replace("_A", " (A)").replace("_deg", " (deg)"))
    ax.legend()
fig.suptitle(f"Unit-cell parameters of {len(xtals)} crystals")
fig.tight_layout()
plt.show()
""", "figure"),
    md("""
## One frame, with its peaks and predicted reflections

The frame with the most integrated reflections: the pixels (the simulated frame we sent), the
peaks the peak search found (circles) and the reflections predicted from the crystal's refined
orientation (squares), all from the stream. Positions in the stream are panel-relative and
corner-referenced, so pixel (i, j) covers [i, i+1).
"""),
    code("""
best_chunk = int(refl.groupby("chunk").size().idxmax())
shown_id = frame_id[best_chunk]
image = frames[shown_id - 1].data[0]
frame_peaks = peaks[peaks.chunk == best_chunk]
frame_refl = refl[refl.chunk == best_chunk]

fig, ax = plt.subplots(figsize=(8, 8))
ax.imshow(np.clip(image, 1, None), cmap="gray_r", norm=LogNorm(vmax=np.percentile(image, 99.9)),
          origin="upper", extent=(0, image.shape[1], image.shape[0], 0))
ax.plot(frame_peaks.fs, frame_peaks.ss, "o", mfc="none", mec="tab:blue", ms=10,
        label=f"{len(frame_peaks)} peaks found")
ax.plot(frame_refl.fs, frame_refl.ss, "s", mfc="none", mec="tab:red", ms=6,
        label=f"{len(frame_refl)} predicted reflections")
ax.set_xlabel("fs (pixels)")
ax.set_ylabel("ss (pixels)")
ax.legend(loc="upper right")
ax.set_title(f"frame {shown_id}")
plt.show()
""", "figure"),
    md("""
## The same from a terminal

With the two files written above, a sender in one terminal and the flow in another (the
simulated frames differ, the processing is the same):

```
crystream serve --mode rep --bind tcp://127.0.0.1:5002 -g simulated.geom -p lysozyme.cell \
    --photon-energy 9500 --clen 0.080 --hit-rate 0.7 --spot-photons 3e5

crystream index --zmq-input=tcp://127.0.0.1:5002 --zmq-request=next --data-format=msgpack \
    -g simulated.geom -p lysozyme.cell -o quickstart.stream -j 2 \
    --peaks=peakfinder8 --threshold=6 --min-snr=4 --min-pix-count=2 --max-pix-count=50 \
    --local-bg-radius=3 --min-peaks=10 --int-radius=3,4,5 --no-data-timeout=10
```

`crystream index` prints the dashboard address, a live progress line, and indexamajig's
summary; it stops after `--no-data-timeout` seconds without frames, or on Ctrl-C.
`crystream demo` does all of this in one command (a simulated sender in the same process,
`--frames 200` by default, written to `demo.stream`).
"""),
    md("""
## Checks

Every frame in the stream exactly once and in order; hit flags against the truth; each indexed
crystal's orientation against the simulated one (misorientation modulo the lattice symmetry);
the cell against the target; and the found peaks on the one frame against the predictions.
"""),
    code("""
# the run and its progress plot
assert final["processed"] == N_FRAMES and final["failed"] == 0, final
assert len(history) > 0 and history.processed.is_monotonic_increasing
# every frame once, in frame order (one chunk per frame, sorted by serial)
assert sorted(frame_id) == list(range(1, N_FRAMES + 1))
assert [c.serial for c in stream.chunks] == sorted(c.serial for c in stream.chunks)
# hits against the truth: no blank is a hit, (nearly) every crystal is found
assert not (results.hit & ~results.true_hit).any()
assert (results.hit & results.true_hit).sum() >= 0.9 * results.true_hit.sum()
assert results.indexed.sum() >= 0.9 * results.hit.sum()
assert len(running) == N_FRAMES and np.isfinite(running.to_numpy()).all() and len(blocks) > 0
# orientations against the truth
angles = []
for _, row in xtals.iterrows():
    truth_cell = frames[row.frame_id - 1].truth.crystals[0].cell
    found = stream.chunks[row.chunk].crystals[0].cell
    angles.append(np.degrees(misorientation(found, truth_cell)))
print(f"misorientation: median {np.median(angles):.3f} deg, max {np.max(angles):.3f} deg")
assert np.max(angles) < 1.0
# cell histograms
for name, value in target_values.items():
    tolerance = 0.01 * value if name.endswith("_A") else 0.5
    assert abs(xtals[name].median() - value) < tolerance, (name, xtals[name].median())
# the frame: found peaks sit on predicted reflections
near = np.hypot(frame_peaks.fs.to_numpy()[:, None] - frame_refl.fs.to_numpy()[None],
                frame_peaks.ss.to_numpy()[:, None] - frame_refl.ss.to_numpy()[None]).min(axis=1)
print(f"{(near < 2).mean():.0%} of the found peaks are within 2 px of a predicted reflection")
assert len(frame_peaks) >= 10 and len(frame_refl) >= 10 and (near < 2).mean() > 0.7
print("all checks passed")
""", "checks"),
]

# --------------------------------------------------------------------------- HPC

HPC = [
    md("""
# Running on a batch system (SLURM, PBS, SGE, LSF, HTCondor)

At a facility the frames are usually processed on compute nodes that a batch system hands out.
crystream gets its Dask workers from the batch system through
[dask-jobqueue](https://jobqueue.dask.org): each batch job runs Dask worker processes that
connect back to a scheduler running here, next to the notebook. What to ask the batch system
for lives in a small YAML file, the same file `crystream index --jobqueue=FILE` takes:

```yaml
system: slurm            # slurm | pbs | sge | lsf | htcondor
cluster:                 # keyword arguments of dask_jobqueue.SLURMCluster (or PBSCluster...)
  cores: 1               # one frame at a time per worker process
  processes: 1
  memory: 2GB
  walltime: "01:00:00"
  queue: express         # partition / queue
  account: my-project
jobs: 4                  # a fixed number of jobs, or instead:
# adapt: {minimum_jobs: 1, maximum_jobs: 16}
```

Workers run the same Python as this notebook unless `cluster.python` says otherwise, so the
virtual environment must be visible on the compute nodes, and so must the frames, the geometry
and the output directory (a shared file system).

**Parameters.** `CLUSTER = "jobqueue"` uses the YAML file; `"local"` runs the same notebook on
a `LocalCluster` of this machine (what the test suite does); a `tcp://host:8786` address uses a
Dask scheduler someone already started.
"""),
    code("""
%matplotlib inline
import dataclasses
import os
import time

import h5py
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml

from cluster import get_cluster
from cluster.jobqueue import expected_workers, jobqueue_cluster, load_jobqueue_config
from crystream.cellfile import format_cell
from crystream.cellmatch import misorientation
from crystream.indexing import IndexingOptions
from crystream.integration import IntegrationOptions
from crystream.peaks import PeakSearchOptions
from crystream.pipeline import PipelineConfig
from crystream.simulate import LYSOZYME, SimulationConfig, simple_detector, simulate_frames
from crystream.stream.reader import read_stream
from flows.config import FlowConfig
from flows.run import start_flow
from flows.summary import final_summary
from readers.options import InputOptions

# Parameters
CLUSTER = os.environ.get("CRYSTREAM_NB_CLUSTER", "jobqueue")   # "jobqueue", "local" or an address
JOBQUEUE_FILE = os.environ.get("CRYSTREAM_NB_JOBQUEUE", "")    # your YAML; "" = write an example
DASHBOARD = os.environ.get("CRYSTREAM_NB_DASHBOARD", "127.0.0.1:8787")
WORK_DIR = os.path.abspath(os.environ.get("CRYSTREAM_NB_WORK_DIR") or "crystream-hpc")  # shared FS
N_FRAMES = int(os.environ.get("CRYSTREAM_NB_FRAMES", "30"))
os.makedirs(WORK_DIR, exist_ok=True)
"""),
    md("""
## The configuration file

If no file is given, an example for SLURM is written (two one-core jobs). The file is checked
by `load_jobqueue_config`, which names the file and the key when something is wrong. The job
script shows exactly what will be submitted: here it comes from the same `jobqueue_cluster`
call that starts the real cluster, asked for zero jobs, so nothing is submitted yet.
"""),
    code("""
if not JOBQUEUE_FILE:
    JOBQUEUE_FILE = os.path.join(WORK_DIR, "slurm.yaml")
    with open(JOBQUEUE_FILE, "w") as fh:
        yaml.safe_dump({"system": "slurm",
                        "cluster": {"cores": 1, "processes": 1, "memory": "2GB",
                                    "walltime": "00:30:00",
                                    "log_directory": os.path.join(WORK_DIR, "jobs")},
                        "jobs": 2}, fh, sort_keys=False)
print(open(JOBQUEUE_FILE).read())
jobqueue = load_jobqueue_config(JOBQUEUE_FILE)
print(jobqueue)
print("workers to wait for:", expected_workers(jobqueue))

preview = jobqueue_cluster(dataclasses.replace(jobqueue, jobs=0), dashboard_address="127.0.0.1:0")
job_script = preview.job_script()
preview.close()
print(job_script)
"""),
    md("""
## Getting the workers

`get_cluster` returns a `ClusterHandle` (a connected `Client`, the cluster object, its kind)
once the requested workers have arrived (for adaptive scaling, the minimum); with a busy
queue that can take a while
(`wait_timeout`). While it runs, `handle.cluster.scale(jobs=N)` or
`handle.cluster.adapt(minimum_jobs=..., maximum_jobs=...)` change the number of jobs, and
`squeue -u $USER` shows them. The dashboard link works from your laptop through an ssh tunnel:
`ssh -L 8787:localhost:8787 login-node`.
"""),
    code("""
if CLUSTER == "jobqueue":
    handle = get_cluster(jobqueue=JOBQUEUE_FILE, dashboard_address=DASHBOARD, wait_timeout=600)
elif CLUSTER == "local":
    handle = get_cluster(workers=2, dashboard_address=DASHBOARD)
else:
    handle = get_cluster(scheduler=CLUSTER)
workers = handle.client.scheduler_info(n_workers=-1)["workers"]
print(f"{handle.kind}: {len(workers)} workers, dashboard {handle.dashboard_link}")
for address, info in workers.items():
    print(f"  {address}  {info.get('name')}  {info.get('nthreads')} thread(s)")
"""),
    md("""
## Frames on the shared file system

Simulated frames written as HDF5 files (`/data/data`, one frame per file) with a file list, as a
detector's file writer would leave them; the flow reads them with `-i files.lst`, each worker
reading its own files.
"""),
    code("""
detector = simple_detector(n=512, pixel=75e-6, clen=0.080, photon_energy=9500)
simulation = SimulationConfig(detector=detector, cell=LYSOZYME, hit_rate=0.7, spot_photons=3e5)
geometry_file = os.path.join(WORK_DIR, "detector.geom")
cell_file = os.path.join(WORK_DIR, "lysozyme.cell")
list_file = os.path.join(WORK_DIR, "files.lst")
open(geometry_file, "w").write(detector.source_text + "\\n")
open(cell_file, "w").write(format_cell(LYSOZYME))
os.makedirs(os.path.join(WORK_DIR, "frames"), exist_ok=True)
truth = {}
with open(list_file, "w") as lst:
    for frame in simulate_frames(simulation, N_FRAMES, seed=11):
        path = os.path.join(WORK_DIR, "frames", f"frame_{frame.serial:04d}.h5")
        with h5py.File(path, "w") as h5:
            h5.create_dataset("/data/data", data=frame.data[0], compression="gzip")
        lst.write(path + "\\n")
        truth[path] = frame.truth
print(f"{len(truth)} files, {sum(t.is_hit for t in truth.values())} with a crystal")
"""),
    md("""
## Run the flow on the batch workers

`start_flow(config, cluster=handle)` runs on the cluster we already have (without `cluster`, it
would start one from `config.jobqueue` / `config.scheduler` / `config.workers`, as the command
line does). One input connection per worker shares the file list; the stream is written here,
in frame order.
"""),
    code("""
config = FlowConfig(
    source="files", geometry=geometry_file, cell=cell_file,
    output=os.path.join(WORK_DIR, "hpc.stream"), input=InputOptions(input=list_file),
    pipeline=PipelineConfig(
        peaks=PeakSearchOptions(peaks="peakfinder8", threshold=6, min_snr=4, min_pix_count=2,
                                max_pix_count=50, local_bg_radius=3, min_peaks=10),
        indexing=IndexingOptions(), integration=IntegrationOptions(int_radius=(3, 4, 5))),
    workers=len(workers), progress=False)
flow = start_flow(config, cluster=handle)
history = []
while not flow.finished:
    snap = flow.counters
    if snap:
        history.append({"elapsed": snap["elapsed"], "processed": snap["processed"],
                        "rate": snap["rate"]})
    time.sleep(0.25)
final = flow.wait(120)
history.append({"elapsed": final["elapsed"], "processed": final["processed"],
                "rate": final["rate"]})
print(final_summary(final))
flow.close()     # also ends the batch jobs (or the local cluster)
history = pd.DataFrame(history)
per_connection = pd.DataFrame(final["ingest_stats"])
per_connection[["conn", "worker", "received", "written", "failed"]]
"""),
    code("""
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.5))
ax1.bar(per_connection.conn.astype(str), per_connection.written)
ax1.set_xlabel("input connection (one per worker)")
ax1.set_ylabel("frames written")
ax1.set_title("Work shared between the workers")
line1, = ax2.plot(history.elapsed, history.processed, label="frames processed")
ax2.set_xlabel("time since start (s)")
ax2.set_ylabel("frames")
ax2b = ax2.twinx()
line2, = ax2b.plot(history.elapsed, history.rate, color="tab:orange", label="frames/s")
ax2b.set_ylabel("frames/s")
ax2.legend(handles=[line1, line2], loc="upper left")
ax2.set_title("Progress")
fig.tight_layout()
plt.show()
""", "figure"),
    md("""
## Checks

Every file once and in list order, the work spread over all workers, and the results against
the simulation's truth.
"""),
    code("""
stream = read_stream(config.output)
assert not stream.problems, stream.problems
names = [c.filename for c in stream.chunks]
assert names == list(truth), "every file once, in list order"
assert final["processed"] == N_FRAMES and final["failed"] == 0
assert len(per_connection) == len(workers) and (per_connection.written > 0).all()
assert per_connection.written.sum() == N_FRAMES and len(history) > 0
hits = np.array([c.hit for c in stream.chunks])
true_hits = np.array([truth[n].is_hit for n in names])
assert not (hits & ~true_hits).any() and (hits & true_hits).sum() >= 0.9 * true_hits.sum()
angles = [np.degrees(misorientation(c.crystals[0].cell, truth[c.filename].crystals[0].cell))
          for c in stream.chunks if c.crystals]
assert len(angles) >= 0.9 * hits.sum() and max(angles) < 1.0, angles
assert "#SBATCH" in job_script or jobqueue.system != "slurm"
print(f"{len(angles)} crystals, misorientation median {np.median(angles):.3f} deg")
print("all checks passed")
""", "checks"),
]


NOTEBOOKS = {
    "stream-analysis.ipynb": STREAM_ANALYSIS,
    "geometry.ipynb": GEOMETRY,
    "quickstart.ipynb": QUICKSTART,
    "hpc.ipynb": HPC,
}


def build(name: str, cells: list) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):  # stable ids keep diffs small
        cell["id"] = f"{Path(name).stem}-{i:02d}"
    nbformat.validate(nb)
    return nb


def main(argv: list[str]) -> int:
    names = argv or list(NOTEBOOKS)
    for name in names:
        nb = build(name, NOTEBOOKS[name])
        nbformat.write(nb, HERE / name)
        print(f"wrote {HERE / name} ({len(nb.cells)} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
