"""Peak-search options: indexamajig's names (``-`` -> ``_``) and CrystFEL 0.12.0 defaults.

The ``--no-X`` flags are stored positively (``use_saturated``, ``revalidate``,
``half_pixel_shift``), matching the dest names of the command-line parser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

METHODS = ("zaef", "peakfinder8", "peakfinder9", "hdf5", "cxi", "msgpack", "none")
FROM_DATA = ("hdf5", "cxi", "msgpack")  # peaks delivered with the frame (frame.peaks)


@dataclass(frozen=True)
class PeakSearchOptions:
    """Everything the peak-search stage needs; immutable, so it travels cheaply to workers."""

    peaks: str = "zaef"
    threshold: float = 800.0
    min_squared_gradient: float = 100000.0
    min_snr: float = 5.0
    min_pix_count: int = 2
    max_pix_count: int = 200
    local_bg_radius: int = 3
    min_res: float = 0.0  # pixels from the beam axis (peakfinder8)
    max_res: float = 0.0  # pixels; 0 = no upper cut
    min_snr_biggest_pix: float = 7.0
    min_snr_peak_pix: float = 6.0
    min_sig: float = 11.0
    min_peak_over_neighbour: float = -math.inf
    peakfinder8_fast: bool = False
    peak_radius: tuple[float, float, float] = (4.0, 5.0, 7.0)  # default = --int-radius
    median_filter: int = 0
    filter_noise: bool = False
    min_peaks: int = 0
    use_saturated: bool = True  # --no-use-saturated sets False
    revalidate: bool = True  # --no-revalidate sets False
    half_pixel_shift: bool = True  # --no-half-pixel-shift sets False
    check_hdf5_snr: bool = False
    highres: float = math.inf  # Angstrom; pixels beyond it are bad

    def __post_init__(self) -> None:
        if self.peaks not in METHODS:
            raise ValueError(f"Unrecognised peak detection method '{self.peaks}' "
                             f"(--peaks; choose from {', '.join(METHODS)})")
        if len(tuple(self.peak_radius)) != 3:
            raise ValueError(f"--peak-radius needs three values inn,mid,out, got {self.peak_radius}")
        inn, mid, out = (float(r) for r in self.peak_radius)
        if not 0 < inn <= mid <= out:
            raise ValueError(f"--peak-radius must satisfy 0 < inn <= mid <= out, got "
                             f"{inn},{mid},{out}")
        object.__setattr__(self, "peak_radius", (inn, mid, out))
        if self.median_filter < 0:
            raise ValueError(f"--median-filter must be >= 0, got {self.median_filter}")
        if self.local_bg_radius < 1:
            raise ValueError(f"--local-bg-radius must be >= 1, got {self.local_bg_radius}")
        if self.min_pix_count < 0 or self.max_pix_count < 0:
            raise ValueError("--min-pix-count and --max-pix-count must be >= 0")
        if not self.highres > 0:
            raise ValueError(f"--highres must be > 0 Angstrom, got {self.highres}")


def is_hit(n_peaks: int, options: PeakSearchOptions) -> bool:
    """CrystFEL's hit test: at least --min-peaks peaks (default 0: every frame is a hit)."""
    return int(n_peaks) >= int(options.min_peaks)
