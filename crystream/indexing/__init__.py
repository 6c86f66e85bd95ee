"""Indexing: our engines (toro: known cell; fft1d: cell-free) inside CrystFEL's flow."""

from crystream.indexing.flow import IndexingResult, index_frame, methods_for
from crystream.indexing.methods import IndexingMethod, IndexingMethodError, parse_methods
from crystream.indexing.options import IndexingOptions

__all__ = ["IndexingMethod", "IndexingMethodError", "IndexingOptions", "IndexingResult",
           "index_frame", "methods_for", "parse_methods"]
