"""Serve frames over ZeroMQ, as OnDA/OM would: a REP server (any request -> one frame) or a
PUB publisher (multipart: topic frame, then the payload frames). The server binds; consumers
connect. ``FrameServer`` runs in a background thread (start/stop), for tests and the CLI.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator

import zmq

from crystream.frame import Frame, PeakList
from crystream.geometry.detector import Detector
from readers.encode import FORMATS, encode_frame


def frame_peaks(frame: Frame, min_photons: float = 30.0) -> PeakList | None:
    """The peaks to send with a frame: its own peak list, else the simulator's true spots."""
    if frame.peaks is not None:
        return frame.peaks
    truth = frame.truth
    if truth is not None and hasattr(truth, "peak_list"):
        return truth.peak_list(min_photons)
    return PeakList.empty()


class FrameServer:
    """Send ``frames`` (encoded as ``data_format``) to ZeroMQ clients from a thread.

    ``mode`` 'rep': answer every request (any bytes) with one frame; 'pub': publish each
    frame as [topic, payload...] (no topic frame if ``topic`` is empty). ``rate`` (Hz) limits
    the pace (None: as fast as possible); ``count`` stops after that many frames.
    ``wait_subscribers`` (pub) holds the first frame until that many subscribers are
    connected, so none is lost to ZeroMQ's slow-joiner gap. Bind to ``tcp://127.0.0.1:*`` to
    get a free port; ``endpoint`` then tells which.
    """

    def __init__(self, frames: Iterable[Frame], detector: Detector, *,
                 bind: str = "tcp://127.0.0.1:5002", mode: str = "rep",
                 data_format: str = "msgpack", topic: str = "ondaframedata",
                 rate: float | None = None, count: int | None = None,
                 with_peaks: bool = False, peak_min_photons: float = 30.0,
                 wait_subscribers: int = 0, sndhwm: int = 1000,
                 context: zmq.Context | None = None) -> None:
        if mode not in ("rep", "pub"):
            raise ValueError(f"mode must be 'rep' or 'pub', not '{mode}'")
        if data_format not in FORMATS:
            raise ValueError(f"unknown data format '{data_format}' (expected one of"
                             f" {', '.join(FORMATS)})")
        if with_peaks and not detector.peak_list:
            raise ValueError("sending peaks needs 'peak_list' in the geometry file")
        if with_peaks and data_format == "seedee":
            raise ValueError("seedee payloads cannot carry a peak list")
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.frames: Iterator[Frame] = iter(frames)
        self.detector = detector
        self.bind = bind
        self.mode = mode
        self.data_format = data_format
        self.topic = topic.encode()
        self.rate = rate
        self.count = count
        self.with_peaks = with_peaks
        self.peak_min_photons = peak_min_photons
        self.wait_subscribers = wait_subscribers
        self.sndhwm = sndhwm
        self.context = context or zmq.Context.instance()
        self.endpoint: str | None = None
        self.sent = 0
        self.error: BaseException | None = None
        self.started_at = 0.0
        self.finished_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._socket: zmq.Socket | None = None

    # ------------------------------------------------------------------ control
    def start(self) -> "FrameServer":
        """Bind now (so a busy address fails here, in the caller) and serve in a thread."""
        sock = self.context.socket(zmq.REP if self.mode == "rep" else zmq.XPUB)
        sock.setsockopt(zmq.SNDHWM, self.sndhwm)
        sock.setsockopt(zmq.LINGER, 2000)
        try:
            sock.bind(self.bind)
        except zmq.ZMQError as exc:
            sock.close(0)
            raise OSError(f"cannot bind {self.mode.upper()} socket to '{self.bind}': {exc}") \
                from None
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._socket = sock
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="crystream-serve", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the socket (pending PUB frames get up to 2 s to leave)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until all frames are served (or stop); True if the server has finished."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> "FrameServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ serving
    def _next_parts(self) -> list[bytes] | None:
        if self.count is not None and self.sent >= self.count:
            return None
        frame = next(self.frames, None)
        if frame is None:
            return None
        peaks = frame_peaks(frame, self.peak_min_photons) if self.with_peaks else None
        return encode_frame(frame, self.detector, self.data_format, peaks)

    def _pace(self, due: float) -> float:
        """Sleep until ``due`` (interruptible by stop); returns the next due time."""
        if self.rate is None:
            return due
        delay = due - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)
        return max(due, time.monotonic() - 1.0 / self.rate) + 1.0 / self.rate

    def _run(self) -> None:
        sock = self._socket
        try:
            if self.mode == "rep":
                self._serve_rep(sock)
            else:
                self._serve_pub(sock)
        except BaseException as exc:  # noqa: BLE001 - reported through .error
            self.error = exc
        finally:
            self.finished_at = time.monotonic()
            sock.close(0 if self._stop.is_set() else 2000)

    def _serve_rep(self, sock: zmq.Socket) -> None:
        due = time.monotonic()
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        while not self._stop.is_set():
            if self.count is not None and self.sent >= self.count:
                return
            if not poller.poll(100):
                continue
            sock.recv_multipart()
            due = self._pace(due)
            parts = self._next_parts()
            if parts is None:
                return
            sock.send_multipart(parts, copy=False)
            self.sent += 1

    def _serve_pub(self, sock: zmq.Socket) -> None:
        subscribers = 0
        while subscribers < self.wait_subscribers and not self._stop.is_set():
            if sock.poll(100):
                msg = sock.recv()
                if msg[:1] == b"\x01":
                    subscribers += 1
        due = time.monotonic()
        while not self._stop.is_set():
            while sock.poll(0):  # drain (un)subscription notices
                sock.recv()
            parts = self._next_parts()
            if parts is None:
                return
            due = self._pace(due)
            if self._stop.is_set():
                return
            sock.send_multipart(([self.topic] if self.topic else []) + parts, copy=False)
            self.sent += 1


def file_frames(list_path: str, detector: Detector, options=None, loop: bool = False,
                base_dir: str | None = None) -> Iterator[Frame]:
    """Frames read from the files of a list (``-i LIST``); ``loop`` repeats the list forever.

    Files that cannot be read are logged and skipped, as in a processing run.
    """
    import logging

    from readers.decode import decode_message
    from readers.errors import PayloadError
    from readers.files import FileListSource
    from readers.options import InputOptions

    log = logging.getLogger(__name__)
    options = options or InputOptions()
    while True:
        produced = 0
        for message in FileListSource(list_path, detector, base_dir=base_dir):
            try:
                frame = decode_message(message, detector, options)
            except (PayloadError, OSError, ValueError) as exc:
                log.error("%s: %s", message.label, exc)
                continue
            produced += 1
            yield frame
        if not loop or produced == 0:
            return
