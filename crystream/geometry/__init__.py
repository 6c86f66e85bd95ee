"""CrystFEL geometry files: the detector model, parser, writer and coordinate transforms."""

from crystream.geometry.detector import (BadRegion, Detector, MaskSpec, Panel, PixelFlag,
                                         ValueSource, lab_position, lab_to_panel,
                                         max_resolution, panel_radius_map,
                                         panel_resolution_map, peaks_to_q,
                                         pixel_centre_grid, scattering_vectors)

__all__ = ["BadRegion", "Detector", "MaskSpec", "Panel", "PixelFlag", "ValueSource",
           "lab_position", "lab_to_panel", "max_resolution", "panel_radius_map",
           "panel_resolution_map", "peaks_to_q", "pixel_centre_grid", "scattering_vectors"]
