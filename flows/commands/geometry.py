"""`crystream geometry FILE`: check a CrystFEL geometry file and summarise its panels.

Exit status 0 for a valid file (warnings are printed), 1 with "<file>:<line>: <what>" for a file
CrystFEL would reject. ``--write`` prints the equivalent normalised file instead.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "geometry", help="check a geometry file and summarise its panels",
        description="Parse a CrystFEL geometry file with CrystFEL 0.12.0's rules, report the "
                    "first fatal error as file:line, or print a summary of the detector.")
    p.add_argument("file", metavar="FILE", help="geometry file")
    p.add_argument("--write", action="store_true",
                   help="print the equivalent geometry file (every panel written in full)")
    p.set_defaults(run=run)
    return p


def _vec(v) -> str:
    return f"{v[0]:+.4f}x {v[1]:+.4f}y {v[2]:+.4f}z"


def _source(src, unit_name: str) -> str:
    if src.from_header:
        return f"from header '{src.location}' (x{src.scale:g} -> {unit_name})"
    return ""


def summary(det) -> list[str]:
    """The lines `crystream geometry` prints for a parsed detector."""
    from crystream.constants import wavelength_to_ev
    from crystream.geometry.detector import scattering_vectors

    out = [f"{det.source_name}: valid, {len(det.panels)} panel(s),"
           f" {sum(p.width * p.height for p in det.panels)} pixels"]
    lam = clen = None
    if det.wavelength.from_header:
        unit = {"photon_energy": "eV", "wavelength": "m", "electron_voltage": "V"}
        out.append(f"beam: {det.wavelength_directive} "
                   f"{_source(det.wavelength, unit[det.wavelength_directive])}")
    else:
        lam = det.resolve_wavelength()
        out.append(f"beam: wavelength {lam * 1e10:.5f} A = {wavelength_to_ev(lam):.2f} eV"
                   f" (from {det.wavelength_directive} = {det.wavelength_text})")
    out.append(f"bandwidth: {det.bandwidth:.2e} (sigma, fraction of the wavelength)")
    if det.clen.from_header:
        out.append(f"clen: {_source(det.clen, 'm')}")
    else:
        clen = det.clen.resolve()
        out.append(f"clen: {clen * 1e3:.3f} mm")
    if det.detector_shift_x is not None:
        parts = []
        for name, src in (("x", det.detector_shift_x), ("y", det.detector_shift_y)):
            if src is None:
                parts.append(f"{name} missing (every frame will fail)")
            elif src.from_header:
                parts.append(f"{name} {_source(src, 'm')}")
            else:
                parts.append(f"{name} {src.resolve() * 1e3:.3f} mm")
        out.append("detector shift: " + ", ".join(parts))
    out.append(f"{'panel':<12} {'size':>9} {'slab fs':>9} {'slab ss':>9} {'corner x,y (px)':>18}"
               f"  {'fs':<27} {'ss':<27} {'pitch um':>8} {'coffset mm':>10} {'max res A':>9}"
               f"  data")
    best = 0.0
    for p in det.panels:
        res = "header"
        if lam is not None and clen is not None:
            fs = np.array([0.0, p.width, 0.0, p.width])
            ss = np.array([0.0, 0.0, p.height, p.height])
            q = float(np.linalg.norm(scattering_vectors(p, fs, ss, clen, lam), axis=-1).max())
            best = max(best, q)
            res = f"{1e10 / q:.2f}" if q > 0 else "inf"
        dims = "" if p.dims == ("ss", "fs") else f" [{','.join(p.dims)}]"
        flags = []
        if p.no_index:
            flags.append("no_index")
        if p.mask_edge_pixels:
            flags.append(f"edge {p.mask_edge_pixels}")
        if p.masks:
            flags.append(f"{len(p.masks)} mask(s)")
        if p.flags:
            flags.append(f"{len(p.flags)} flag(s)")
        extra = f" ({', '.join(flags)})" if flags else ""
        out.append(f"{p.name:<12} {p.width:>4}x{p.height:<4} {p.min_fs:>4}-{p.max_fs:<4}"
                   f" {p.min_ss:>4}-{p.max_ss:<4} {p.corner_x:>8.2f},{p.corner_y:<9.2f}"
                   f"  {_vec(p.fs):<27} {_vec(p.ss):<27} {p.pixel_pitch * 1e6:>8.3f}"
                   f" {p.coffset * 1e3:>10.3f} {res:>9}  {p.data}{dims}{extra}")
    if best > 0:
        out.append(f"max resolution: {1e10 / best:.2f} A (largest |q| over all panel corners)")
    for b in det.bad_regions:
        if b.is_xy:
            out.append(f"bad region {b.name}: {b.min_x} < x < {b.max_x}, {b.min_y} < y <"
                       f" {b.max_y} (lab pixels)")
        else:
            out.append(f"bad region {b.name}: panel {b.panel}, fs {b.min_fs}-{b.max_fs},"
                       f" ss {b.min_ss}-{b.max_ss} (panel pixels)")
    for g, members in det.groups.items():
        out.append(f"group {g}: {', '.join(members)}")
    if det.header_locations():
        out.append("header values read per frame: " + ", ".join(det.header_locations()))
    return out


def run(args: argparse.Namespace) -> int:
    import logging

    from crystream.geometry.parser import GeometryError, load_geometry
    from crystream.geometry.writer import write_geometry

    parser_log = logging.getLogger("crystream.geometry.parser")
    level = parser_log.level
    parser_log.setLevel(logging.ERROR)  # the warnings are printed below, once
    try:
        det = load_geometry(args.file)
    except GeometryError as exc:
        print(f"crystream geometry: {exc}", file=sys.stderr)
        return 1
    finally:
        parser_log.setLevel(level)
    for w in det.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.write:
        sys.stdout.write(write_geometry(det))
    else:
        print("\n".join(summary(det)))
    return 0
