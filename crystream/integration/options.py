"""Integration and prediction options, named and defaulted as indexamajig 0.12.0 (options.md §6)."""

from __future__ import annotations

import math
from dataclasses import dataclass

METHODS = ("rings", "prof2d", "none")


@dataclass(frozen=True)
class IntegrationMethod:
    """A parsed ``--integration`` string."""

    method: str = "rings"
    centre: bool = False
    saturated: bool = False
    gradient: bool = False


def parse_integration_method(text: str) -> IntegrationMethod:
    """Parse ``rings-nocen-nosat-nograd``-style strings ('-' or ',' separated).

    ``prof2d`` implies ``cen`` unless ``nocen`` follows; ``rescut``/``norescut`` are errors as
    in CrystFEL.
    """
    parts = [p.strip().lower() for p in text.replace(",", "-").split("-")]
    if not parts or parts[0] not in METHODS:
        raise ValueError(f"--integration={text}: unknown method '{parts[0] if parts else ''}'"
                         f" (use rings, prof2d or none)")
    method = parts[0]
    centre = method == "prof2d"
    sat = grad = False
    for mod in parts[1:]:
        if mod == "cen":
            centre = True
        elif mod == "nocen":
            centre = False
        elif mod == "sat":
            sat = True
        elif mod == "nosat":
            sat = False
        elif mod == "grad":
            grad = True
        elif mod == "nograd":
            grad = False
        elif mod in ("rescut", "norescut"):
            raise ValueError(f"--integration={text}: '{mod}' is no longer supported "
                             "(use --push-res to control the resolution cut)")
        else:
            raise ValueError(f"--integration={text}: unknown modifier '{mod}' "
                             "(cen/nocen, sat/nosat, grad/nograd)")
    return IntegrationMethod(method, centre, sat, grad)


@dataclass(frozen=True)
class IntegrationOptions:
    """indexamajig's integration/prediction options; units as on the command line.

    ``push_res`` is in nm^-1 (as CrystFEL's code converts it), ``highres`` in Angstrom,
    ``fix_profile_radius`` in m^-1 (None = estimate), ``fix_divergence`` in radians.
    """

    integration: str = "rings-nocen-nosat-nograd"
    int_radius: tuple[float, float, float] = (4.0, 5.0, 7.0)
    push_res: float = math.inf
    highres: float = math.inf
    fix_profile_radius: float | None = None
    fix_divergence: float = 0.0
    overpredict: bool = False
    cell_parameters_only: bool = False

    def __post_init__(self) -> None:
        parse_integration_method(self.integration)
        if len(self.int_radius) != 3:
            raise ValueError(f"--int-radius={self.int_radius}: need three radii inner,middle,outer")
        inn, mid, out = self.radii
        if not (0 < inn <= mid <= out):
            raise ValueError(f"--int-radius={','.join(str(r) for r in self.int_radius)}: radii "
                             "must satisfy 0 < inner <= middle <= outer (after truncation to int)")
        if not self.highres > 0:
            raise ValueError(f"--highres={self.highres}: must be positive (Angstrom)")

    @property
    def method(self) -> IntegrationMethod:
        return parse_integration_method(self.integration)

    @property
    def radii(self) -> tuple[int, int, int]:
        """The radii as integration uses them: truncated to int."""
        return tuple(int(r) for r in self.int_radius)  # type: ignore[return-value]

    @property
    def push_res_m(self) -> float:
        """--push-res in m^-1."""
        return self.push_res * 1e9
