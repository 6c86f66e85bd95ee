"""Detector -> geometry-file text that parses back to the same detector.

Every panel is written out in full (no top-level defaults), so the result does not depend on
the defaults-inheritance order of the original file; direction vectors use CrystFEL's
``%fx %+fy %+fz`` form, other numbers ``repr`` so they survive the round trip exactly.
"""

from __future__ import annotations

import math

from crystream.constants import ELECTRON_CHARGE, ELECTRON_MASS, PLANCK, SPEED_OF_LIGHT
from crystream.constants import wavelength_to_ev
from crystream.geometry.detector import Detector, Panel, ValueSource


def _num(x: float) -> str:
    return repr(float(x))


def _direction(v) -> str:
    return f"{v[0]:f}x {v[1]:+f}y {v[2]:+f}z"


def _voltage_for_wavelength(wavelength: float) -> float:
    """Inverse of the relativistic electron wavelength: accelerating voltage in V."""
    p = PLANCK / wavelength
    mc2 = ELECTRON_MASS * SPEED_OF_LIGHT**2
    kinetic = math.sqrt((p * SPEED_OF_LIGHT) ** 2 + mc2**2) - mc2
    return kinetic / ELECTRON_CHARGE


def _header(src: ValueSource, units: dict[float, str]) -> str:
    return f"{src.location} {units[src.scale]}"


def _wavelength_line(det: Detector) -> str:
    src, key = det.wavelength, det.wavelength_directive
    if src.from_header:
        units = {"photon_energy": {1.0: "eV", 1000.0: "keV"},
                 "wavelength": {1.0: "m", 1e-10: "A"},
                 "electron_voltage": {1.0: "V", 1000.0: "kV"}}[key]
        return f"{key} = {_header(src, units)}"
    lam = src.resolve()
    if key == "photon_energy":
        return f"photon_energy = {_num(wavelength_to_ev(lam))} eV"
    if key == "electron_voltage":
        return f"electron_voltage = {_num(_voltage_for_wavelength(lam))} V"
    return f"wavelength = {_num(lam)} m"


def _length_line(key: str, src: ValueSource) -> str:
    if src.from_header:
        return f"{key} = {_header(src, {1.0: 'm', 1e-3: 'mm'})}"
    return f"{key} = {_num(src.resolve())} m"


def _panel_lines(p: Panel) -> list[str]:
    n = p.name
    out = [f"{n}/min_fs = {p.min_fs}", f"{n}/max_fs = {p.max_fs}",
           f"{n}/min_ss = {p.min_ss}", f"{n}/max_ss = {p.max_ss}",
           f"{n}/corner_x = {_num(p.corner_x)}", f"{n}/corner_y = {_num(p.corner_y)}",
           f"{n}/fs = {_direction(p.fs)}", f"{n}/ss = {_direction(p.ss)}",
           f"{n}/res = {_num(p.res)}", f"{n}/coffset = {_num(p.coffset)}"]
    if p.adu_per_photon is not None:
        out.append(f"{n}/adu_per_photon = {_num(p.adu_per_photon)}")
    if p.adu_per_ev is not None:
        out.append(f"{n}/adu_per_eV = {_num(p.adu_per_ev)}")
    if math.isfinite(p.max_adu):
        out.append(f"{n}/max_adu = {_num(p.max_adu)}")
    out.append(f"{n}/data = {p.data}")
    out += [f"{n}/dim{i} = {d}" for i, d in enumerate(p.dims)]
    if p.mask_edge_pixels:
        out.append(f"{n}/mask_edge_pixels = {p.mask_edge_pixels}")
    if p.no_index:
        out.append(f"{n}/no_index = true")
    out += [f"{n}/flag_{f.kind} = {f.value}" for f in p.flags]
    for i, m in enumerate(p.masks):
        out.append(f"{n}/mask{i}_data = {m.data}")
        if m.file is not None:
            out.append(f"{n}/mask{i}_file = {m.file}")
        out.append(f"{n}/mask{i}_goodbits = {m.goodbits:#x}")
        out.append(f"{n}/mask{i}_badbits = {m.badbits:#x}")
    if p.saturation_map is not None:
        out.append(f"{n}/saturation_map = {p.saturation_map}")
    if p.saturation_map_file is not None:
        out.append(f"{n}/saturation_map_file = {p.saturation_map_file}")
    return out


def write_geometry(detector: Detector) -> str:
    """Geometry-file text equivalent to ``detector`` (parse -> write -> parse is stable)."""
    det = detector
    lines = [det.preamble.rstrip("\n")] if det.preamble.strip() else []
    lines.append(_wavelength_line(det))
    lines.append(f"bandwidth = {_num(det.bandwidth)}")
    lines.append(_length_line("clen", det.clen))
    if det.detector_shift_x is not None:
        lines.append(_length_line("detector_shift_x", det.detector_shift_x))
    if det.detector_shift_y is not None:
        lines.append(_length_line("detector_shift_y", det.detector_shift_y))
    if det.peak_list is not None:
        lines.append(f"peak_list = {det.peak_list}")
    if det.peak_list_type != "auto":
        lines.append(f"peak_list_type = {det.peak_list_type}")
    by_name = {p.name: p for p in det.panels}
    for p in det.panels:
        lines.append("")
        lines += _panel_lines(p)
    for b in det.bad_regions:
        lines.append("")
        if b.is_xy:
            lines += [f"{b.name}/{k} = {_num(getattr(b, k))}"
                      for k in ("min_x", "max_x", "min_y", "max_y")]
        else:
            p = by_name[b.panel]
            lines += [f"{b.name}/panel = {b.panel}",
                      f"{b.name}/min_fs = {b.min_fs + p.min_fs}",
                      f"{b.name}/max_fs = {b.max_fs + p.min_fs}",
                      f"{b.name}/min_ss = {b.min_ss + p.min_ss}",
                      f"{b.name}/max_ss = {b.max_ss + p.min_ss}"]
    auto_all = det.groups == {"all": [p.name for p in det.panels]}
    if det.groups and not auto_all:
        lines.append("")
        lines += [f"group_{g} = {','.join(m)}" for g, m in det.groups.items()]
    return "\n".join(lines) + "\n"
