"""crystream: real-time serial crystallography on Dask, writing CrystFEL streams."""

__version__ = "0.1.0"
