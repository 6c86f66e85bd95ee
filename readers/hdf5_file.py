"""HDF5 files on disk (file input, ``-i``): events, panel pixels, headers, masks, peak lists.

Events follow CrystFEL's form ``<path parts joined by />//<dim indices joined by />``: each
``%`` in a panel's ``data`` path is one whole HDF5 path component, each ``dimN = %`` one frame
index. Panels that share a dataset and fixed indices are read with one hyperslab covering all
of them, and converted once to float32.
"""

from __future__ import annotations

import itertools

import h5py
import hdf5plugin  # noqa: F401  (registers bitshuffle-LZ4 and other filters for Eiger data)
import numpy as np

from crystream.geometry.detector import Detector, Panel
from readers.errors import PayloadError

NUMERIC_KINDS = "uifb"


def parse_event(event: str | None) -> tuple[list[str], list[int]]:
    """'run_1//3/7' -> (['run_1'], [3, 7]); '//' or None -> ([], [])."""
    if not event:
        return [], []
    if "//" not in event:
        raise ValueError(f"event '{event}' has no '//'")
    left, right = event.split("//", 1)
    parts = [p for p in left.split("/") if p]
    try:
        dims = [int(x) for x in right.split("/") if x]
    except ValueError:
        raise ValueError(f"event '{event}': frame indices after '//' must be integers") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"event '{event}': negative frame index")
    return parts, dims


def format_event(parts: list[str] | tuple[str, ...], dims: list[int] | tuple[int, ...]) -> str:
    return "/".join(parts) + "//" + "/".join(str(d) for d in dims)


def substitute(path: str, parts: list[str]) -> str:
    """Fill each '%' of ``path`` with the next event path part."""
    n = path.count("%")
    if n > len(parts):
        raise ValueError(f"event does not have enough path placeholder values for '{path}'")
    pieces = path.split("%")
    out = pieces[0]
    for part, piece in zip(parts, pieces[1:]):
        out += part + piece
    return out


class Hdf5FileImage:
    """One open HDF5 file; ``label`` names file and event in every error."""

    format = "hdf5"

    def __init__(self, path: str, label: str) -> None:
        self.path = path
        self.label = label
        try:
            self.file = h5py.File(path, "r")
        except (OSError, ValueError) as exc:
            raise PayloadError(label, f"cannot open HDF5 file ({_first_line(exc)})") from None

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "Hdf5FileImage":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def fail(self, what: str) -> PayloadError:
        return PayloadError(self.label, what)

    def dataset(self, path: str, what: str) -> h5py.Dataset:
        try:
            obj = self.file.get(path)
        except (OSError, KeyError, ValueError, RuntimeError) as exc:
            raise self.fail(f"cannot read {what} '{path}' ({_first_line(exc)})") from None
        if obj is None:
            raise self.fail(f"no {what} '{path}' in the file")
        if not isinstance(obj, h5py.Dataset):
            raise self.fail(f"{what} '{path}' is not a dataset")
        return obj

    def read(self, ds: h5py.Dataset, selection: tuple, dtype=None) -> np.ndarray:
        try:
            if dtype is not None and ds.dtype != dtype:
                return ds.astype(dtype)[selection]
            return ds[selection]
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
            raise self.fail(f"cannot read '{ds.name}' ({_first_line(exc)})") from None

    # ------------------------------------------------------------ events
    def events(self, detector: Detector) -> list[str]:
        """Every event of this file, from the first panel's data path and placeholder dims."""
        panel = detector.panels[0]
        out = []
        for parts in self._path_matches(panel.data):
            ds = self.dataset(substitute(panel.data, parts), f"panel {panel.name} data")
            if ds.ndim != len(panel.dims):
                raise self.fail(f"'{ds.name}' has {ds.ndim} dimensions but panel {panel.name}"
                                f" expects {len(panel.dims)} ({', '.join(panel.dims)})")
            sizes = [range(ds.shape[i]) for i, d in enumerate(panel.dims) if d == "%"]
            out += [format_event(parts, idx) for idx in itertools.product(*sizes)]
        return out

    def _path_matches(self, path: str) -> list[list[str]]:
        """Every way to fill the '%' components of ``path`` with names present in the file."""
        if "%" not in path:
            return [[]]
        comps = path.strip("/").split("/")
        found: list[tuple[str, list[str]]] = [("", [])]
        for comp in comps:
            nxt = []
            for prefix, parts in found:
                if "%" not in comp:
                    nxt.append((f"{prefix}/{comp}", parts))
                    continue
                if comp != "%":
                    raise self.fail(f"'%' must be a whole path component in '{path}'")
                group = self.file.get(prefix or "/")
                if isinstance(group, h5py.Group):
                    nxt += [(f"{prefix}/{k}", parts + [k]) for k in sorted(group.keys())]
            found = nxt
        return [parts for p, parts in found if isinstance(self.file.get(p), h5py.Dataset)]

    # ------------------------------------------------------------ pixels
    def _selection(self, panel: Panel, ds: h5py.Dataset, frame_idx: list[int], what: str,
                   ss: slice, fs: slice) -> tuple:
        """The HDF5 selection of ``panel.dims`` with the given ss/fs slices."""
        if ds.ndim != len(panel.dims):
            raise self.fail(f"{what} '{ds.name}' has {ds.ndim} dimensions but panel"
                            f" {panel.name} expects {len(panel.dims)} ({', '.join(panel.dims)})")
        idx = iter(frame_idx)
        sel: list[object] = []
        for axis, d in enumerate(panel.dims):
            if d == "ss":
                sel.append(ss)
                limit = ss.stop
            elif d == "fs":
                sel.append(fs)
                limit = fs.stop
            else:
                if d == "%":
                    try:
                        i = next(idx)
                    except StopIteration:
                        raise self.fail(f"event has too few frame indices for panel"
                                        f" {panel.name}") from None
                else:
                    i = int(d)
                sel.append(i)
                limit = i + 1
            if limit > ds.shape[axis]:
                raise self.fail(f"{what} for panel {panel.name} is outside '{ds.name}' of shape"
                                f" {ds.shape} (dim{axis} = {d})")
        return tuple(sel)

    def panels(self, detector: Detector, event: str | None) -> tuple[list[np.ndarray], bool]:
        """float32 pixels per panel, and whether any stored type was floating point."""
        parts, frame_idx = self._event(event)
        groups: dict[tuple, list[int]] = {}
        for i, p in enumerate(detector.panels):
            path = self._sub(p.data, parts, f"panel {p.name} data")
            fixed = tuple(d for d in p.dims if d not in ("ss", "fs"))
            groups.setdefault((path, fixed), []).append(i)
        out: list[np.ndarray | None] = [None] * len(detector.panels)
        any_float = False
        for (path, _), members in groups.items():
            ds = self.dataset(path, f"panel {detector.panels[members[0]].name} data")
            if ds.dtype.kind not in NUMERIC_KINDS:
                raise self.fail(f"dataset '{path}' has non-numeric type {ds.dtype}")
            any_float |= ds.dtype.kind == "f"
            ps = [detector.panels[i] for i in members]
            ss0, ss1 = min(p.min_ss for p in ps), max(p.max_ss for p in ps) + 1
            fs0, fs1 = min(p.min_fs for p in ps), max(p.max_fs for p in ps) + 1
            sel = self._selection(ps[0], ds, frame_idx, "data", slice(ss0, ss1),
                                  slice(fs0, fs1))
            block = self.read(ds, sel)  # native type: faster than HDF5's own conversion
            for i, p in zip(members, ps):
                out[i] = np.array(block[p.min_ss - ss0:p.max_ss + 1 - ss0,
                                        p.min_fs - fs0:p.max_fs + 1 - fs0], dtype=np.float32)
        return out, any_float  # type: ignore[return-value]

    def panel_array(self, panel: Panel, location: str, event: str | None, what: str,
                    dtype=None) -> np.ndarray:
        """A mask or saturation map for one panel: same dims as the data, or a plain 2-D array."""
        parts, frame_idx = self._event(event)
        ds = self.dataset(self._sub(location, parts, what), what)
        ss = slice(panel.min_ss, panel.max_ss + 1)
        fs = slice(panel.min_fs, panel.max_fs + 1)
        if ds.ndim == 2 and len(panel.dims) != 2:  # one map for every frame / module
            if panel.max_ss >= ds.shape[0] or panel.max_fs >= ds.shape[1]:
                raise self.fail(f"{what} '{ds.name}' of shape {ds.shape} is smaller than"
                                f" panel {panel.name}")
            return np.asarray(self.read(ds, (ss, fs), dtype))
        return np.asarray(self.read(ds, self._selection(panel, ds, frame_idx, what, ss, fs),
                                    dtype))

    # ------------------------------------------------------------ headers
    def header(self, location: str, event: str | None) -> int | float | str:
        """A scalar, or a per-frame array indexed by the event's frame indices."""
        parts, frame_idx = self._event(event)
        try:
            ds = self.dataset(self._sub(location, parts, "header"), "header")
        except PayloadError:
            raise self.fail(f"No such numeric field '{location}'") from None
        kind = ds.dtype.kind
        is_str = kind in "SO" or h5py.check_string_dtype(ds.dtype) is not None
        if is_str:
            if ds.shape not in ((), (1,)):
                raise self.fail(f"string header '{location}' must be a single value")
            value = self.read(ds, ())
            value = value.reshape(-1)[0] if isinstance(value, np.ndarray) else value
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            if "\n" in text:
                raise self.fail(f"header '{location}' contains a newline")
            return text
        if kind not in "uifb":
            raise self.fail(f"HDF5 header '{location}' is not a recognised type ({ds.dtype})")
        idx = tuple(frame_idx[:ds.ndim])
        rest = ds.shape[len(idx):]
        if any(n != 1 for n in rest):
            raise self.fail(f"header '{location}' of shape {ds.shape} cannot be indexed by"
                            f" the event's frame indices {list(frame_idx)}")
        if any(i >= n for i, n in zip(idx, ds.shape)):
            raise self.fail(f"header '{location}' of shape {ds.shape} has no entry {list(idx)}")
        value = np.asarray(self.read(ds, idx + (0,) * len(rest) if ds.ndim else ()))
        value = value.reshape(()).item()
        return float(value) if kind == "f" else int(value)

    # ------------------------------------------------------------ peaks
    def peaks(self, location: str, list_type: str, event: str | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Slab (fs, ss, intensity) from a list3 dataset or a CXI peak group (row = event)."""
        parts, frame_idx = self._event(event)
        if list_type == "auto":
            low = self.path.lower()
            if low.endswith(".cxi"):
                list_type = "cxi"
            elif low.endswith(".h5"):
                list_type = "list3"
            else:
                raise self.fail(f"cannot tell the peak list type of '{self.path}' from its"
                                " extension; set peak_list_type in the geometry")
        location = self._sub(location, parts, "peak list")
        obj = self.file.get(location)
        if obj is None:
            raise self.fail(f"peak list '{location}' not found")
        if list_type == "list3":
            if not isinstance(obj, h5py.Dataset) or obj.ndim != 2 or obj.shape[1] not in (3, 4):
                raise self.fail(f"peak list '{location}' is not an N x 3 or N x 4 dataset")
            t = np.asarray(self.read(obj, ()), dtype=np.float64)
            return t[:, 0].copy(), t[:, 1].copy(), t[:, 2].copy()
        if not isinstance(obj, h5py.Group):
            raise self.fail(f"peak list '{location}' is not a CXI group")
        row = frame_idx[0] if frame_idx else 0
        cols = []
        for name in ("nPeaks", "peakXPosRaw", "peakYPosRaw", "peakTotalIntensity"):
            ds = obj.get(name)
            if not isinstance(ds, h5py.Dataset) or ds.ndim < 1 or ds.shape[0] <= row:
                raise self.fail(f"CXI peak list '{location}' has no row {row} in '{name}'")
            cols.append(np.asarray(self.read(ds, (row,))))
        n = int(cols[0].reshape(-1)[0])
        if n < 0 or any(c.size < n for c in cols[1:]):
            raise self.fail(f"CXI peak list '{location}': nPeaks = {n} but the arrays are"
                            " shorter")
        return tuple(np.asarray(c.reshape(-1)[:n], dtype=np.float64)  # type: ignore[return-value]
                     for c in cols[1:])

    # ------------------------------------------------------------ helpers
    def _event(self, event: str | None) -> tuple[list[str], list[int]]:
        try:
            return parse_event(event)
        except ValueError as exc:
            raise self.fail(str(exc)) from None

    def _sub(self, path: str, parts: list[str], what: str) -> str:
        try:
            return substitute(path, parts)
        except ValueError as exc:
            raise self.fail(f"{what}: {exc}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
