"""CrystFEL's per-frame indexing flow (``index_pattern_4``, indexing.md §2-3) over our engines."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from crystream.cell import UnitCell
from crystream.cellmatch import Tolerances, compare_cell_parameters, match_to_target
from crystream.chunk import Crystal
from crystream.frame import Frame, PeakList
from crystream.geometry.detector import Detector, peaks_to_q
from crystream.indexing.cell_free import index_cell_free
from crystream.indexing.checks import explained_mask, is_duplicate, peak_alignment_ok
from crystream.indexing.known_cell import index_known_cell
from crystream.indexing.methods import IndexingMethod, parse_methods
from crystream.indexing.options import IndexingOptions
from crystream.indexing.refine import PROFILE_RADIUS, refine_prediction

MAX_TRIES = 6
MAX_ENGINE_PEAKS = 300  # the engines see at most this many of the strongest peaks


@dataclass
class IndexingResult:
    """What indexing contributes to a chunk: the surviving crystals, ``indexed_by`` and
    ``n_indexing_tries`` (0 when nothing was indexed)."""

    crystals: list[Crystal] = field(default_factory=list)
    indexed_by: str = "none"
    n_indexing_tries: int = 0


def methods_for(options: IndexingOptions, target: UnitCell | None) -> list[IndexingMethod]:
    """The parsed --indexing list for this target (cheap; raises IndexingMethodError)."""
    return parse_methods(options.indexing, target)


def _run_engine(method: IndexingMethod, q: np.ndarray, target: UnitCell | None,
                multi: bool) -> list[UnitCell]:
    # Without --multi only the best lattice, as CrystFEL's engines return one crystal; with it,
    # every lattice, each of which may explain only part of the peaks (CrystFEL relaxes its
    # peak check the same way).
    frac, most = (0.3, 3) if multi else (0.5, 1)
    q = q[:MAX_ENGINE_PEAKS]  # the working list is sorted strongest first
    if method.engine == "toro":
        return index_known_cell(q, target, max_lattices=most, min_fraction=frac)
    return index_cell_free(q, target, use_cell=method.cell, max_lattices=most,
                           min_fraction=frac)


def _shift(frame: Frame) -> tuple[float, float]:
    return (frame.detector_shift_x, frame.detector_shift_y)


def _try_indexer(method: IndexingMethod, work: PeakList, q: np.ndarray, frame: Frame,
                 detector: Detector, target: UnitCell | None, options: IndexingOptions,
                 tol: Tolerances, accepted: list[Crystal],
                 rng: np.random.Generator) -> list[Crystal]:
    """One engine run plus the checks of indexing.md §3; returns the crystals that survive."""
    have_params = target is not None and target.has_parameters
    check_cell = options.check_cell and have_params
    out: list[Crystal] = []
    for cell in _run_engine(method, q, target, options.multi):
        if check_cell:
            matched = match_to_target(cell, target, tol, rng)
            if matched is None:
                continue
            cell = matched
        elif target is None or not have_params:
            cell = replace(cell, lattice_type="triclinic", unique_axis="?")
        notes: list[str] = []
        if options.refine:
            # the target's Bravais constraints apply only when the cell is in its setting
            in_setting = (target is not None and cell.lattice_type == target.lattice_type
                          and cell.centering == target.centering)
            refined = refine_prediction(cell, work, detector, frame.wavelength, frame.clen,
                                        target if in_setting else None, _shift(frame))
            if refined is None:
                continue
            cell, notes = refined
        if check_cell and not compare_cell_parameters(cell, target, tol):
            continue
        if options.check_peaks and not peak_alignment_ok(cell, q, options.multi):
            continue
        if is_duplicate(cell, [c.cell for c in accepted + out]):
            continue
        notes.append("predict_refine/det_shift x = 0.000 y = 0.000 mm")
        out.append(Crystal(cell=cell, profile_radius=PROFILE_RADIUS, notes=notes))
    return out


def index_frame(frame: Frame, peaks: PeakList, detector: Detector, target: UnitCell | None,
                options: IndexingOptions) -> IndexingResult:
    """Index one frame's peaks as indexamajig does: methods in order, retries dropping the
    weakest 10% of peaks, --multi, and the crystal checks. The caller keeps the full peak list
    for the stream."""
    if peaks is None or len(peaks) == 0:
        return IndexingResult()
    where = f"frame {frame.filename} {frame.event} (serial {frame.serial})"
    if not (np.isfinite(frame.wavelength) and frame.wavelength > 0):
        raise ValueError(f"{where}: cannot index with wavelength {frame.wavelength!r} m")
    if not np.isfinite(frame.clen):
        raise ValueError(f"{where}: cannot index with camera length {frame.clen!r} m")
    methods = methods_for(options, target)
    tol = options.tolerances
    rng = np.random.default_rng(options.seed if options.seed is not None
                                else [frame.serial & 0xFFFFFFFF])
    q_all = peaks_to_q(detector, peaks.panel, peaks.fs, peaks.ss, frame.clen,
                       frame.wavelength, *_shift(frame))
    bad = ~np.isfinite(q_all).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{where}: peak {i} (fs {peaks.fs[i]!r}, ss {peaks.ss[i]!r}, panel "
                         f"{int(peaks.panel[i])}) has no scattering vector")
    for method in methods:
        order = np.argsort(-np.asarray(peaks.intensity, dtype=float), kind="stable")
        work, q = peaks.take(order), q_all[order]
        crystals: list[Crystal] = []
        ntry = 0
        while True:
            ntry += 1
            new = _try_indexer(method, work, q, frame, detector, target, options, tol,
                               crystals, rng)
            crystals.extend(new)
            done = True
            if not new:
                n = len(work)
                cut = n // 10
                if options.retry and cut > 0 and n - cut >= 6:
                    work, q = work.take(np.arange(n - cut)), q[:n - cut]
                    done = False
            elif options.multi:
                keep = ~explained_mask(new[-1].cell, q)
                work, q = work.take(keep), q[keep]
                done = len(work) < 5
            if done or ntry >= MAX_TRIES:
                break
        if crystals:
            return IndexingResult(crystals, method.name, ntry)
    return IndexingResult()
