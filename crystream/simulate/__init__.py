"""Simulated still diffraction frames with ground truth, and ready-made detectors and cells.

Deliberately independent of crystream's prediction code, which is tested against it.
"""

from crystream.simulate.background import BackgroundModel, background_map
from crystream.simulate.cells import (LYSOZYME, MONOCLINIC_C, NAMED_CELLS, THERMOLYSIN,
                                      TRICLINIC)
from crystream.simulate.detectors import multipanel_detector, simple_detector
from crystream.simulate.orientation import random_rotation, rotation_about
from crystream.simulate.simulation import (Simulation, SimulationConfig, simulate_frame,
                                           simulate_frames)
from crystream.simulate.truth import CrystalTruth, FrameTruth, TruthReflections

__all__ = ["BackgroundModel", "CrystalTruth", "FrameTruth", "LYSOZYME", "MONOCLINIC_C",
           "NAMED_CELLS", "Simulation", "SimulationConfig", "THERMOLYSIN", "TRICLINIC",
           "TruthReflections", "background_map", "multipanel_detector",
           "random_rotation", "rotation_about", "simple_detector", "simulate_frame",
           "simulate_frames"]
