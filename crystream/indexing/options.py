"""Indexing options: indexamajig's names (``-`` → ``_``) with CrystFEL 0.12.0 defaults."""

from __future__ import annotations

from dataclasses import dataclass

from crystream.cellmatch import Tolerances
from crystream.indexing.methods import check_syntax


@dataclass(frozen=True)
class IndexingOptions:
    """What ``index_frame`` needs; built once from the command line, shipped to workers."""

    indexing: str | None = None  # --indexing; None = automatic choice
    tolerance: tuple[float, ...] | str = (5.0, 5.0, 5.0, 1.5, 1.5, 1.5)  # % and degrees
    check_cell: bool = True  # --no-check-cell
    multi: bool = False  # --multi
    retry: bool = True  # --no-retry
    refine: bool = True  # --no-refine
    check_peaks: bool = True  # --no-check-peaks
    max_indexer_threads: int = 1  # accepted; no engine of ours uses it
    wavelength_estimate: float | None = None  # metres; our engines do not need it
    camera_length_estimate: float | None = None  # metres; our engines do not need it
    seed: int | None = None  # random tie-breaks in cell matching (None: fresh per frame)

    def __post_init__(self) -> None:
        check_syntax(self.indexing)  # a bad --indexing fails at start-up, not per frame
        self.tolerances  # noqa: B018 -- and so does a bad --tolerance

    @property
    def tolerances(self) -> Tolerances:
        """The --tolerance value as fractions and radians."""
        if isinstance(self.tolerance, str):
            return Tolerances.parse(self.tolerance)
        return Tolerances.parse(",".join(repr(float(v)) for v in self.tolerance))
