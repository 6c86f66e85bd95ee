"""Ready-made detectors for tests: a Detector plus the equivalent geometry-file text.

The Detector is built directly (so the simulator does not depend on the geometry parser);
every number is taken back from the text it writes, so parsing ``source_text`` must give
the same model.
"""

from __future__ import annotations

import math

import numpy as np

from crystream.constants import ev_to_wavelength
from crystream.geometry.detector import BadRegion, Detector, Panel, ValueSource


def _num(value: float) -> str:
    """A geometry-file number: plain decimal, no exponent (fs/ss forbid exponents)."""
    text = f"{value:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _header_lines(photon_energy: float, clen: float, bandwidth: float,
                  header_values: bool) -> list[str]:
    if header_values:
        return ["photon_energy = beam_energy eV", "clen = detector_distance mm",
                f"bandwidth = {bandwidth!r}"]
    return [f"photon_energy = {_num(photon_energy)} eV", f"clen = {_num(clen)} m",
            f"bandwidth = {bandwidth!r}"]


def _build(name: str, comment: str, panels: list[tuple[str, int, int, int, int, float, float]],
           pixel: float, clen: float, photon_energy: float, adu_per_photon: float,
           max_adu: float | None, bandwidth: float, data: str, peak_list: str | None,
           header_values: bool, beamstop: float) -> Detector:
    res_text = _num(1.0 / pixel)
    lines = [f"; {comment}"]
    lines += _header_lines(photon_energy, clen, bandwidth, header_values)
    lines += [f"res = {res_text}", f"adu_per_photon = {_num(adu_per_photon)}"]
    if max_adu is not None:
        lines.append(f"max_adu = {_num(max_adu)}")
    lines.append(f"data = {data}")
    if peak_list is not None:
        lines.append(f"peak_list = {peak_list}")
    lines.append("")
    model = []
    for pname, min_fs, max_fs, min_ss, max_ss, cx, cy in panels:
        lines += [f"{pname}/min_fs = {min_fs}", f"{pname}/max_fs = {max_fs}",
                  f"{pname}/min_ss = {min_ss}", f"{pname}/max_ss = {max_ss}",
                  f"{pname}/corner_x = {_num(cx)}", f"{pname}/corner_y = {_num(cy)}",
                  f"{pname}/fs = +1.000000x +0.000000y +0.000000z",
                  f"{pname}/ss = +0.000000x +1.000000y +0.000000z", ""]
        model.append(Panel(name=pname, min_fs=min_fs, max_fs=max_fs, min_ss=min_ss,
                           max_ss=max_ss, corner_x=float(_num(cx)), corner_y=float(_num(cy)),
                           fs=np.array([1.0, 0.0, 0.0]), ss=np.array([0.0, 1.0, 0.0]),
                           res=float(res_text), adu_per_photon=float(_num(adu_per_photon)),
                           max_adu=float(_num(max_adu)) if max_adu is not None else math.inf,
                           data=data))
    bad = []
    if beamstop > 0:
        b = _num(beamstop)
        lines += [f"bad_beamstop/min_x = -{b}", f"bad_beamstop/max_x = {b}",
                  f"bad_beamstop/min_y = -{b}", f"bad_beamstop/max_y = {b}", ""]
        bad.append(BadRegion("bad_beamstop", min_x=-float(b), max_x=float(b),
                             min_y=-float(b), max_y=float(b)))
    text = "\n".join(lines)
    if header_values:
        wavelength = ValueSource(location="beam_energy")
        clen_src = ValueSource(location="detector_distance", scale=1e-3)
        wl_text = "beam_energy eV"
    else:
        wavelength = ValueSource(value=ev_to_wavelength(float(_num(photon_energy))))
        clen_src = ValueSource(value=float(_num(clen)))
        wl_text = f"{_num(photon_energy)} eV"
    return Detector(panels=model, wavelength=wavelength, clen=clen_src, bandwidth=bandwidth,
                    peak_list=peak_list, bad_regions=bad, source_text=text, source_name=name,
                    wavelength_directive="photon_energy", wavelength_text=wl_text)


def simple_detector(n: int = 1024, pixel: float = 75e-6, clen: float = 0.1,
                    photon_energy: float = 12000.0, adu_per_photon: float = 1.0,
                    max_adu: float | None = None, bandwidth: float = 1e-8,
                    data: str = "/data/data", peak_list: str | None = None,
                    header_values: bool = False, beamstop: float = 0.0) -> Detector:
    """One n x n panel, beam through its centre, fs = +x, ss = +y.

    ``header_values`` makes photon energy and clen header look-ups (``beam_energy`` in eV,
    ``detector_distance`` in mm, OnDA's keys) instead of literals; ``beamstop`` adds an x/y
    bad region of that half-width in pixels around the beam.
    """
    half = n / 2.0
    return _build("simple.geom", f"crystream simulated detector: one {n}x{n} panel",
                  [("p0", 0, n - 1, 0, n - 1, -half, -half)], pixel, clen, photon_energy,
                  adu_per_photon, max_adu, bandwidth, data, peak_list, header_values, beamstop)


def multipanel_detector(rows: int = 2, cols: int = 2, panel_fs: int = 256, panel_ss: int = 256,
                        gap: int = 10, pixel: float = 100e-6, clen: float = 0.1,
                        photon_energy: float = 12000.0, adu_per_photon: float = 1.0,
                        max_adu: float | None = None, bandwidth: float = 1e-8,
                        data: str = "/data/data", peak_list: str | None = None,
                        header_values: bool = False) -> Detector:
    """rows x cols panels tiled in one slab, separated in the lab by ``gap`` pixels.

    Panel (r, c) is named ``q{r*cols+c}`` and read from slab rows r*panel_ss.. and columns
    c*panel_fs..; the beam passes through the centre of the whole array (inside a gap when
    rows or cols is even).
    """
    total_x = cols * panel_fs + (cols - 1) * gap
    total_y = rows * panel_ss + (rows - 1) * gap
    panels = []
    for r in range(rows):
        for c in range(cols):
            panels.append((f"q{r * cols + c}", c * panel_fs, (c + 1) * panel_fs - 1,
                           r * panel_ss, (r + 1) * panel_ss - 1,
                           -total_x / 2.0 + c * (panel_fs + gap),
                           -total_y / 2.0 + r * (panel_ss + gap)))
    return _build("multipanel.geom",
                  f"crystream simulated detector: {rows}x{cols} panels of {panel_fs}x{panel_ss}"
                  f", {gap}-pixel gaps", panels, pixel, clen, photon_energy, adu_per_photon,
                  max_adu, bandwidth, data, peak_list, header_values, 0.0)
