"""``--indexing`` method strings: our engines, prior-information flags and ``indexed_by``.

crystream's engines:
* ``toro`` — known-cell engine (needs ``-p`` with parameters; uses lattice and cell, like
  TakeTwo: reported as ``toro-latt-cell``);
* ``fft1d`` — cell-free 1-D FFT engine (asdf family; the cell, if allowed, only bounds the
  search, and the lattice flag is stripped: ``fft1d-nolatt-cell``).
"""

from __future__ import annotations

from dataclasses import dataclass

from crystream.cell import UnitCell


class IndexingMethodError(ValueError):
    """A bad ``--indexing`` value, or a method that cannot run with the given target cell."""


OUR_ENGINES = ("toro", "fft1d")
CRYSTFEL_ENGINES = ("dirax", "mosflm", "asdf", "felix", "xds", "taketwo", "xgandalf",
                    "pinkindexer", "ffbidx", "smallcell", "file", "simulation")
OLD_MODIFIERS = ("retry", "noretry", "multi", "nomulti", "refine", "norefine", "raw", "bad",
                 "comb", "axes")
FLAGS = ("latt", "nolatt", "cell", "nocell")

# (latt, cell) defaults, and which flags the engine can use at all
_DEFAULTS = {"toro": (True, True), "fft1d": (False, True)}
_SUPPORTED = {"toro": (True, True), "fft1d": (False, True)}


@dataclass(frozen=True)
class IndexingMethod:
    """One engine with its prior-information flags."""

    engine: str
    latt: bool
    cell: bool

    @property
    def name(self) -> str:
        """The stream's ``indexed_by`` value, e.g. ``toro-latt-cell``."""
        return (f"{self.engine}-{'latt' if self.latt else 'nolatt'}-"
                f"{'cell' if self.cell else 'nocell'}")


def _ours() -> str:
    return ", ".join(OUR_ENGINES)


def _parse_entry(entry: str) -> tuple[str, dict[str, bool]]:
    parts = [p for p in entry.strip().split("-") if p]
    engine = None
    flags: dict[str, bool] = {}
    for part in parts:
        low = part.lower()
        if low in OLD_MODIFIERS:
            raise IndexingMethodError(
                f"--indexing: '{part}' in '{entry}': the way indexing options are given has "
                "changed; use --no-retry, --multi, --no-refine etc. instead")
        if low in FLAGS:
            if low in ("latt", "nolatt"):
                flags["latt"] = low == "latt"
            else:
                flags["cell"] = low == "cell"
            continue
        if low in OUR_ENGINES or low in CRYSTFEL_ENGINES:
            if engine is not None:
                raise IndexingMethodError(
                    f"--indexing: two engines in one entry '{entry}' (separate them with ',')")
            engine = low
            continue
        raise IndexingMethodError(
            f"--indexing: unrecognised '{part}' in '{entry}'; crystream's engines are: {_ours()}")
    if engine is None:
        raise IndexingMethodError(f"--indexing: no engine in '{entry}'; crystream's engines are: "
                                  f"{_ours()}")
    return engine, flags


def check_syntax(text: str | None) -> None:
    """Raise IndexingMethodError for a method string that is wrong whatever the target
    (unknown or CrystFEL-only engines, old modifiers, repeats); used when options are built."""
    if text is None or text.strip().lower() == "none":
        return
    seen: list[str] = []
    for entry in text.split(","):
        engine, _ = _parse_entry(entry)
        if engine in CRYSTFEL_ENGINES:
            raise IndexingMethodError(
                f"--indexing: CrystFEL's '{engine}' engine is not part of crystream; "
                f"crystream's engines are: {_ours()}")
        if engine in seen:
            raise IndexingMethodError(f"--indexing: method '{engine}' given more than once")
        seen.append(engine)


def parse_methods(text: str | None, target: UnitCell | None) -> list[IndexingMethod]:
    """The methods to try, in order. ``None`` chooses automatically: toro if the target cell
    has parameters, then fft1d (CrystFEL's TakeTwo-first auto-detection mapped onto ours).
    ``'none'`` gives an empty list."""
    have_params = target is not None and target.has_parameters
    if text is None:
        names = (["toro"] if have_params else []) + ["fft1d"]
        return [_finish(IndexingMethod(n, *_DEFAULTS[n]), target) for n in names]
    if text.strip().lower() == "none":
        return []
    check_syntax(text)
    out: list[IndexingMethod] = []
    for entry in text.split(","):
        engine, flags = _parse_entry(entry)
        latt, cell = _DEFAULTS[engine]
        latt = flags.get("latt", latt)
        cell = flags.get("cell", cell)
        out.append(_finish(IndexingMethod(engine, latt, cell), target))
    return out


def _finish(method: IndexingMethod, target: UnitCell | None) -> IndexingMethod:
    """The prepare step: strip flags the engine cannot use or the target cannot give."""
    can_latt, can_cell = _SUPPORTED[method.engine]
    have_params = target is not None and target.has_parameters
    latt = method.latt and can_latt and target is not None
    cell = method.cell and can_cell and have_params
    if method.engine == "toro":
        if not (method.latt and method.cell):
            raise IndexingMethodError(
                f"--indexing: '{method.name}': toro is a known-cell engine and needs both the "
                "lattice and the cell (toro-latt-cell)")
        if not have_params:
            raise IndexingMethodError(
                "--indexing: toro needs a target unit cell with parameters (-p FILE)")
    return IndexingMethod(method.engine, latt, cell)
