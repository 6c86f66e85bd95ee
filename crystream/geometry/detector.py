"""The detector model that a parsed geometry file becomes, and its coordinate transforms.

Conventions (shared/spec/geometry-and-cell.md §1.6): positions (fs, ss) are continuous,
panel-relative and corner-referenced (pixel i covers [i, i+1)); lab coordinates are in pixel
units of the panel; scattering vectors are in m^-1 with the beam along +z.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from crystream.constants import electron_wavelength, ev_to_wavelength


@dataclass(frozen=True)
class ValueSource:
    """A number given literally or read per frame from a header location.

    ``scale`` converts the stored value to SI (e.g. 1e-3 for a clen header in mm).
    """

    value: float | None = None
    location: str | None = None
    scale: float = 1.0

    @property
    def from_header(self) -> bool:
        return self.location is not None

    def resolve(self, headers: dict[str, object] | None = None) -> float:
        """The SI value, looking up ``location`` in ``headers`` when it is a header value."""
        if self.location is None:
            return float(self.value) * self.scale if self.value is not None else 0.0
        if headers is None or self.location not in headers:
            raise KeyError(f"header value '{self.location}' not found in frame")
        return float(headers[self.location]) * self.scale


@dataclass(frozen=True)
class MaskSpec:
    """One of a panel's up-to-eight masks: bad where (m & good) != good or (m & bad) != 0."""

    data: str
    file: str | None = None
    goodbits: int = 0
    badbits: int = 0


@dataclass(frozen=True)
class PixelFlag:
    """A value flag: ``kind`` is 'lessthan', 'morethan' or 'equal'; ``value`` is the int CrystFEL stores."""

    kind: str
    value: int


@dataclass
class Panel:
    """One panel: where its pixels are in the data array and where they sit in the lab."""

    name: str
    min_fs: int
    max_fs: int
    min_ss: int
    max_ss: int
    corner_x: float
    corner_y: float
    fs: np.ndarray  # (3,) lab direction of +fs, pixel units
    ss: np.ndarray  # (3,) lab direction of +ss, pixel units
    res: float  # pixels per metre
    coffset: float = 0.0  # metres
    adu_per_photon: float | None = None
    adu_per_ev: float | None = None
    max_adu: float = float("inf")
    data: str = "/data/data"
    dims: tuple[str, ...] = ("ss", "fs")  # dim0 first: 'ss', 'fs', '%' or a literal index
    mask_edge_pixels: int = 0
    no_index: bool = False
    flags: tuple[PixelFlag, ...] = ()
    masks: tuple[MaskSpec, ...] = ()
    saturation_map: str | None = None
    saturation_map_file: str | None = None

    @property
    def width(self) -> int:
        return self.max_fs - self.min_fs + 1

    @property
    def height(self) -> int:
        return self.max_ss - self.min_ss + 1

    @property
    def shape(self) -> tuple[int, int]:
        """(ss, fs) shape of this panel's pixel array."""
        return (self.height, self.width)

    @property
    def pixel_pitch(self) -> float:
        return 1.0 / self.res

    def gain(self, photon_energy_ev: float) -> float:
        """ADU per photon at this photon energy (adu_per_eV is converted per frame)."""
        if self.adu_per_photon is not None:
            return self.adu_per_photon
        if self.adu_per_ev is not None:
            return self.adu_per_ev * photon_energy_ev
        return 1.0


@dataclass
class BadRegion:
    """A bad region: fs/ss (inclusive, **panel-relative**, i.e. slab minus the panel's min_fs/
    min_ss, with ``panel`` naming the panel) or x/y in lab pixel units (strict bounds).
    """

    name: str
    panel: str | None = None
    min_fs: int | None = None
    max_fs: int | None = None
    min_ss: int | None = None
    max_ss: int | None = None
    min_x: float | None = None
    max_x: float | None = None
    min_y: float | None = None
    max_y: float | None = None

    @property
    def is_xy(self) -> bool:
        return self.min_x is not None


@dataclass
class Detector:
    """A whole geometry file: panels, beam, bad regions, groups and the text it came from.

    ``wavelength``: a literal is stored in metres; a header source's ``scale`` converts the
    header value to the base unit of ``wavelength_directive`` (eV, m or V), so use
    :meth:`resolve_beam` / :meth:`resolve_wavelength` rather than ``wavelength.resolve``.
    ``groups`` maps each ``group_`` name to its direct members (``all`` is created when the
    file has no groups).
    """

    panels: list[Panel]
    wavelength: ValueSource  # metres
    clen: ValueSource  # metres
    bandwidth: float = 1e-8
    detector_shift_x: ValueSource | None = None  # metres
    detector_shift_y: ValueSource | None = None
    peak_list: str | None = None
    peak_list_type: str = "auto"
    bad_regions: list[BadRegion] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    source_text: str = ""  # the file verbatim, for the stream header
    source_name: str = ""
    wavelength_directive: str = "photon_energy"  # which directive set the wavelength
    wavelength_text: str = ""  # the directive's value as written
    preamble: str = ""  # comment/blank lines before the first real line, written back out
    warnings: list[str] = field(default_factory=list)  # non-fatal parser messages, "file:line: ..."

    def panel_index(self, name: str) -> int:
        for i, p in enumerate(self.panels):
            if p.name == name:
                return i
        raise KeyError(f"no panel named '{name}'")

    def resolve_wavelength(self, headers: dict[str, object] | None = None) -> float:
        """Wavelength in metres, converting a header photon energy (eV) or voltage (V)."""
        src = self.wavelength
        if not src.from_header:
            return src.resolve()
        try:
            value = src.resolve(headers)
        except (TypeError, ValueError):
            raise ValueError(f"Value '{(headers or {}).get(src.location)}' ({src.location})"
                             " can't be converted to float") from None
        if self.wavelength_directive == "photon_energy":
            return ev_to_wavelength(value)
        if self.wavelength_directive == "electron_voltage":
            return electron_wavelength(value)
        return value

    def resolve_beam(self, headers: dict[str, object] | None = None
                     ) -> tuple[float, float, float, float]:
        """(wavelength_m, clen_m, shift_x_m, shift_y_m) for one frame's header values.

        Raises KeyError naming the header when a header location is missing, ValueError when
        detector_shift_x is given without detector_shift_y (CrystFEL fails the frame too).
        """
        wavelength = self.resolve_wavelength(headers)
        try:
            clen = self.clen.resolve(headers)
        except (TypeError, ValueError):
            raise ValueError(f"Value '{(headers or {}).get(self.clen.location)}'"
                             f" ({self.clen.location}) can't be converted to float") from None
        shift_x = shift_y = 0.0
        if self.detector_shift_x is not None:
            if self.detector_shift_y is None:
                raise ValueError("detector_shift_x is given without detector_shift_y")
            shift_x = self.detector_shift_x.resolve(headers)
            shift_y = self.detector_shift_y.resolve(headers)
        return wavelength, clen, shift_x, shift_y

    def header_locations(self) -> list[str]:
        """Header locations this geometry consults, in CrystFEL's cache order."""
        out = []
        for src in (self.wavelength, self.clen, self.detector_shift_x, self.detector_shift_y):
            if src is not None and src.location is not None and src.location not in out:
                out.append(src.location)
        return out


# ---------------------------------------------------------------- transforms


def lab_position(panel: Panel, fs: np.ndarray, ss: np.ndarray, clen: float,
                 shift_x: float = 0.0, shift_y: float = 0.0) -> np.ndarray:
    """Lab (x, y, z) in metres for panel-relative corner-referenced (fs, ss); shape (..., 3).

    ``shift_x``/``shift_y`` are the detector shift in metres (moves every panel).
    """
    fs = np.asarray(fs, dtype=np.float64)
    ss = np.asarray(ss, dtype=np.float64)
    pitch = panel.pixel_pitch
    cnx = panel.corner_x + shift_x / pitch
    cny = panel.corner_y + shift_y / pitch
    cnz = (clen + panel.coffset) / pitch
    x = cnx + fs * panel.fs[0] + ss * panel.ss[0]
    y = cny + fs * panel.fs[1] + ss * panel.ss[1]
    z = cnz + fs * panel.fs[2] + ss * panel.ss[2]
    return np.stack([x, y, z], axis=-1) * pitch


def scattering_vectors(panel: Panel, fs: np.ndarray, ss: np.ndarray, clen: float,
                       wavelength: float, shift_x: float = 0.0,
                       shift_y: float = 0.0) -> np.ndarray:
    """q (m^-1) for positions on one panel; shape (..., 3). |q| = 1/d."""
    r = lab_position(panel, fs, ss, clen, shift_x, shift_y)
    norm = np.linalg.norm(r, axis=-1, keepdims=True)
    q = r / (wavelength * norm)
    q[..., 2] -= 1.0 / wavelength
    return q


def peaks_to_q(detector: Detector, panel_index: np.ndarray, fs: np.ndarray, ss: np.ndarray,
               clen: float, wavelength: float, shift_x: float = 0.0,
               shift_y: float = 0.0) -> np.ndarray:
    """q (m^-1), shape (n, 3), for a peak list spread over panels (vectorised per panel)."""
    panel_index = np.asarray(panel_index)
    fs = np.asarray(fs, dtype=np.float64)
    ss = np.asarray(ss, dtype=np.float64)
    out = np.empty((len(fs), 3))
    for i in np.unique(panel_index):
        sel = panel_index == i
        out[sel] = scattering_vectors(detector.panels[int(i)], fs[sel], ss[sel], clen,
                                      wavelength, shift_x, shift_y)
    return out


def pixel_centre_grid(panel: Panel) -> tuple[np.ndarray, np.ndarray]:
    """(fs, ss) coordinates of every pixel centre of a panel, each of shape (height, width)."""
    ss, fs = np.mgrid[0:panel.height, 0:panel.width]
    return fs + 0.5, ss + 0.5


def panel_resolution_map(panel: Panel, clen: float, wavelength: float,
                         shift_x: float = 0.0, shift_y: float = 0.0) -> np.ndarray:
    """|q| (m^-1) at every pixel centre, shape (height, width)."""
    fs, ss = pixel_centre_grid(panel)
    q = scattering_vectors(panel, fs, ss, clen, wavelength, shift_x, shift_y)
    return np.linalg.norm(q, axis=-1)


def panel_radius_map(panel: Panel, shift_x: float = 0.0, shift_y: float = 0.0) -> np.ndarray:
    """Distance in pixels from the beam axis at every pixel centre (peakfinder8's radius)."""
    fs, ss = pixel_centre_grid(panel)
    pitch = panel.pixel_pitch
    x = panel.corner_x + shift_x / pitch + fs * panel.fs[0] + ss * panel.ss[0]
    y = panel.corner_y + shift_y / pitch + fs * panel.fs[1] + ss * panel.ss[1]
    return np.hypot(x, y)


def max_resolution(detector: Detector, clen: float, wavelength: float) -> float:
    """Largest |q| (m^-1) over the four corners of every panel."""
    best = 0.0
    for p in detector.panels:
        fs = np.array([0.0, p.width, 0.0, p.width])
        ss = np.array([0.0, 0.0, p.height, p.height])
        q = scattering_vectors(p, fs, ss, clen, wavelength)
        best = max(best, float(np.linalg.norm(q, axis=-1).max()))
    return best


def lab_to_panel(panel: Panel, xyz: np.ndarray, clen: float,
                 shift_x: float = 0.0, shift_y: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Where rays from the sample along ``xyz`` (shape (n, 3), any length) meet the panel plane.

    Returns panel-relative (fs, ss), NaN where a ray misses the plane or points away from it;
    callers check the range [0, width) x [0, height).
    """
    xyz = np.atleast_2d(np.asarray(xyz, dtype=np.float64))
    pitch = panel.pixel_pitch
    corner = np.array([panel.corner_x + shift_x / pitch, panel.corner_y + shift_y / pitch,
                       (clen + panel.coffset) / pitch])
    # Solve fs*F + ss*S - t*dir = -corner for (fs, ss, t), one 3x3 system per ray.
    systems = np.empty((len(xyz), 3, 3))
    systems[:, :, 0] = panel.fs
    systems[:, :, 1] = panel.ss
    systems[:, :, 2] = -xyz
    out_fs = np.full(len(xyz), np.nan)
    out_ss = np.full(len(xyz), np.nan)
    solvable = np.abs(np.linalg.det(systems)) > 1e-12
    if solvable.any():
        rhs = np.broadcast_to(-corner, (int(solvable.sum()), 3))[..., None]
        sol = np.linalg.solve(systems[solvable], rhs)[..., 0]
        ahead = sol[:, 2] > 0
        idx = np.flatnonzero(solvable)[ahead]
        out_fs[idx] = sol[ahead, 0]
        out_ss[idx] = sol[ahead, 1]
    return out_fs, out_ss
