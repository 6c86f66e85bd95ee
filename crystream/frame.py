"""A detector frame: per-panel pixels and bad-pixel masks, beam metadata, headers, peaks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class PeakList:
    """Peaks as parallel arrays; fs/ss are panel-relative and corner-referenced (pixel centre = i+0.5)."""

    fs: np.ndarray
    ss: np.ndarray
    panel: np.ndarray  # int panel index into Detector.panels
    intensity: np.ndarray

    @classmethod
    def empty(cls) -> "PeakList":
        z = np.zeros(0)
        return cls(z.copy(), z.copy(), np.zeros(0, dtype=np.int32), z.copy())

    def __len__(self) -> int:
        return len(self.fs)

    def take(self, index: np.ndarray) -> "PeakList":
        """A subset (boolean mask or index array), e.g. after revalidation or a retry cut."""
        return PeakList(self.fs[index], self.ss[index], self.panel[index], self.intensity[index])


@dataclass
class Frame:
    """One detector readout and everything known about it before processing.

    ``data[i]`` is float32 (ss, fs) for panel i (None with --no-image-data); ``bad[i]`` is a
    boolean array, True where the pixel must not be used.
    """

    serial: int
    filename: str
    event: str = "//"
    data: list[np.ndarray] | None = None
    bad: list[np.ndarray] | None = None
    wavelength: float = 0.0  # metres
    clen: float = 0.0  # metres, resolved from the geometry (literal or header)
    detector_shift_x: float = 0.0  # metres
    detector_shift_y: float = 0.0
    headers: dict[str, object] = field(default_factory=dict)  # location -> value, cache order
    peaks: PeakList | None = None  # peaks delivered with the data (msgpack/hdf5/cxi)
    saturation: list[np.ndarray] | None = None  # per-pixel saturation maps, if any
    source_id: object = None  # what a source needs to acknowledge it (e.g. ASAP::O id)
    truth: object = None  # simulator ground truth; never written to a stream

    @property
    def photon_energy_ev(self) -> float:
        from crystream.constants import wavelength_to_ev
        return wavelength_to_ev(self.wavelength)

    @property
    def has_image(self) -> bool:
        return self.data is not None
