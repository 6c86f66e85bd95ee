"""HDF5 payloads: a complete HDF5 file image in memory, read through the geometry's paths."""

from __future__ import annotations

import io

import h5py
import hdf5plugin  # noqa: F401  (registers bitshuffle/LZ4/... filters for compressed chunks)
import numpy as np

from readers.errors import PayloadError


class Hdf5Payload:
    """Datasets, headers and peak lists of one in-memory HDF5 file image (event '//')."""

    format = "hdf5"

    def __init__(self, buf: bytes, label: str) -> None:
        self.label = label
        try:
            # BytesIO is faster than an HDF5 file image here (no extra copy into the core driver).
            self.file = h5py.File(io.BytesIO(buf), "r")
        except (OSError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise PayloadError(label, f"couldn't open HDF5 image of {len(buf)} bytes ({first})") from None

    def close(self) -> None:
        self.file.close()

    def _dataset(self, path: str, what: str) -> h5py.Dataset:
        if "%" in path:
            raise PayloadError(self.label, f"{what} path '{path}' has a '%' placeholder, which"
                                           " streamed HDF5 (event '//') cannot fill")
        try:
            obj = self.file.get(path)
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            raise PayloadError(self.label, f"cannot read {what} '{path}' ({exc})") from None
        if obj is None:
            raise PayloadError(self.label, f"no {what} '{path}' in the HDF5 image")
        if not isinstance(obj, h5py.Dataset):
            raise PayloadError(self.label, f"{what} '{path}' is not a dataset")
        return obj

    def array(self, path: str) -> h5py.Dataset:
        """The dataset at ``path`` (read lazily: panels slice only their rectangle)."""
        ds = self._dataset(path, "panel data")
        if ds.dtype.kind not in "uif":
            raise PayloadError(self.label, f"dataset '{path}' has non-numeric type {ds.dtype}")
        return ds

    def read(self, ds: h5py.Dataset, selection: tuple) -> np.ndarray:
        """Read a hyperslab, turning HDF5 errors (corrupt chunks, missing filters) into PayloadError."""
        try:
            return ds[selection]
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise PayloadError(self.label, f"cannot read '{ds.name}' ({first})") from None

    def header(self, path: str) -> int | float | str:
        """A scalar (or all-ones-shape) float, int or string dataset."""
        ds = self._dataset(path, "header")
        if any(n != 1 for n in ds.shape):
            raise PayloadError(self.label, f"header '{path}' is an array of shape {ds.shape};"
                                           " only single values can be read for event '//'")
        value = self.read(ds, ())
        value = value.reshape(()).item() if isinstance(value, np.ndarray) else value
        kind = ds.dtype.kind
        if kind == "f":
            return float(value)
        if kind in "iu":
            return int(value)
        if kind in "SO" or h5py.check_string_dtype(ds.dtype) is not None:
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            if "\n" in text:
                raise PayloadError(self.label, f"header '{path}' contains a newline")
            return text
        raise PayloadError(self.label, f"HDF5 header '{path}' is not a recognised type ({ds.dtype})")

    def peaks(self, location: str, list_type: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Slab (fs, ss, intensity) from a list3 dataset (N x 3|4) or a CXI peak group."""
        obj = self.file.get(location)
        if obj is None:
            raise PayloadError(self.label, f"peak list '{location}' not found in the HDF5 image")
        if list_type == "auto":  # no file extension for a payload: decide by the object kind
            list_type = "cxi" if isinstance(obj, h5py.Group) else "list3"
        if list_type == "list3":
            if not isinstance(obj, h5py.Dataset) or obj.ndim != 2 or obj.shape[1] not in (3, 4):
                raise PayloadError(self.label, f"peak list '{location}' is not an N x 3 or N x 4"
                                               " dataset (list3)")
            table = np.asarray(self.read(obj, ()), dtype=np.float64)
            return table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy()
        if not isinstance(obj, h5py.Group):
            raise PayloadError(self.label, f"peak list '{location}' is not a CXI group")
        cols = []
        for name in ("nPeaks", "peakXPosRaw", "peakYPosRaw", "peakTotalIntensity"):
            if name not in obj or not isinstance(obj[name], h5py.Dataset):
                raise PayloadError(self.label, f"CXI peak list '{location}' has no '{name}'")
            arr = np.asarray(self.read(obj[name], ()))
            cols.append(arr[0] if arr.ndim >= 1 and name == "nPeaks" else
                        (arr[0] if arr.ndim == 2 else arr))  # row 0: event '//' has no index
        n = int(np.asarray(cols[0]).reshape(-1)[0])
        if n < 0 or any(len(c) < n for c in cols[1:]):
            raise PayloadError(self.label, f"CXI peak list '{location}': nPeaks = {n} but the"
                                           " position arrays are shorter")
        return tuple(np.asarray(c[:n], dtype=np.float64) for c in cols[1:])  # type: ignore[return-value]
