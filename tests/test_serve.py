"""FrameServer and `crystream serve` through real ZeroMQ sockets on 127.0.0.1: every pixel
must come back identical (decoded here directly with msgpack, h5py and seedee)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time

import h5py
import msgpack
import numpy as np
import pytest
import seedee
import zmq

from crystream.simulate import (LYSOZYME, SimulationConfig, multipanel_detector,
                                simple_detector, simulate_frames)
from readers.sender import FrameServer

TIMEOUT_MS = 10000


def _pixels(fmt: str, parts: list[bytes], det) -> list[np.ndarray]:
    """Decode one payload straight with the format's own library; return per-panel arrays."""
    if fmt == "msgpack":
        (buf,) = parts
        obj = msgpack.unpackb(buf, raw=False, strict_map_key=False)[0]["/data/data"]
        slab = np.frombuffer(obj[b"data"], dtype=obj[b"type"]).reshape(obj[b"shape"])
    elif fmt == "hdf5":
        (buf,) = parts
        with h5py.File(io.BytesIO(buf), "r") as f:
            slab = f["/data/data"][()]
    else:
        buf, meta = parts
        slab = seedee.deserialize(buf, meta.decode())
    return [slab[p.min_ss:p.max_ss + 1, p.min_fs:p.max_fs + 1] for p in det.panels]


@pytest.fixture(scope="module")
def frames():
    det = multipanel_detector(panel_fs=64, panel_ss=48, gap=4, peak_list="peak_list")
    cfg = SimulationConfig(det, LYSOZYME, hit_rate=0.7, clen=0.03)
    return det, list(simulate_frames(cfg, 6, seed=12))


def _socket(kind):
    s = zmq.Context.instance().socket(kind)
    s.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    s.setsockopt(zmq.LINGER, 0)
    return s


@pytest.mark.parametrize("fmt", ["msgpack", "hdf5", "seedee"])
def test_rep_round_trip(frames, fmt):
    det, sent = frames
    with FrameServer(sent, det, bind="tcp://127.0.0.1:*", mode="rep", data_format=fmt,
                     count=len(sent)) as server:
        req = _socket(zmq.REQ)
        req.connect(server.endpoint)
        for frame in sent:
            req.send(b"next")
            got = _pixels(fmt, req.recv_multipart(), det)
            assert all(np.array_equal(a, b) for a, b in zip(got, frame.data))
        req.close()
        assert server.wait(5) and server.sent == len(sent) and server.error is None


@pytest.mark.parametrize("fmt", ["msgpack", "hdf5", "seedee"])
def test_pub_round_trip_with_topic_frame(frames, fmt):
    det, sent = frames
    server = FrameServer(sent, det, bind="tcp://127.0.0.1:*", mode="pub", data_format=fmt,
                         topic="ondaframedata", wait_subscribers=1)
    server.start()
    try:
        sub = _socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"ondaframedata")
        sub.connect(server.endpoint)
        for frame in sent:
            parts = sub.recv_multipart()
            assert parts[0] == b"ondaframedata"
            got = _pixels(fmt, parts[1:], det)
            assert all(np.array_equal(a, b) for a, b in zip(got, frame.data))
        sub.close()
        assert server.wait(5) and server.sent == len(sent)
    finally:
        server.stop()


def test_peaks_are_sent_and_rate_is_kept(frames):
    det, sent = frames
    with FrameServer(iter(sent), det, bind="tcp://127.0.0.1:*", mode="rep", rate=40.0,
                     with_peaks=True, count=5) as server:
        req = _socket(zmq.REQ)
        req.connect(server.endpoint)
        t0 = time.monotonic()
        for frame in sent[:5]:
            req.send(b"x")
            main = msgpack.unpackb(req.recv(), raw=False, strict_map_key=False)[0]
            truth = frame.truth.peak_list()
            assert len(main["peak_list"]["fs"]) == len(truth)
        elapsed = time.monotonic() - t0
        req.close()
    assert elapsed >= 4 / 40.0 * 0.9  # five frames at 40 Hz: at least four intervals


def test_bad_server_settings_are_refused(frames):
    det, sent = frames
    with pytest.raises(ValueError, match="peak_list"):
        FrameServer(sent, simple_detector(n=32), with_peaks=True)
    with pytest.raises(ValueError, match="mode"):
        FrameServer(sent, det, mode="router")
    with FrameServer(sent, det, bind="tcp://127.0.0.1:*") as first:  # waits for requests
        with pytest.raises(OSError, match="cannot bind"):
            FrameServer(sent, det, bind=first.endpoint).start()


def test_serve_cli_rep(tmp_path):
    geom = tmp_path / "served.geom"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "serve", "--bind", "tcp://127.0.0.1:*",
         "--count", "2", "--seed", "3", "--data-format", "hdf5", "--with-peaks",
         "--write-geometry", str(geom)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "serving hdf5 frames (REP) on tcp://127.0.0.1:" in line, proc.stderr.read()
        endpoint = line.split()[-1]
        from crystream.geometry.parser import load_geometry
        det = load_geometry(str(geom))
        want = list(simulate_frames(SimulationConfig(simple_detector(peak_list="/data/peaks"),
                                                     LYSOZYME), 2, seed=3))
        req = _socket(zmq.REQ)
        req.connect(endpoint)
        for frame in want:
            req.send(b"next")
            (buf,) = req.recv_multipart()
            with h5py.File(io.BytesIO(buf), "r") as f:
                assert np.array_equal(f["/data/data"][()], frame.data[0])
                assert f["/data/peaks"].shape[1] == 3
        req.close()
        assert proc.wait(20) == 0
        assert "sent 2 frames" in proc.stdout.read()
        assert det.peak_list == "/data/peaks" and det.panels[0].width == 1024
    finally:
        proc.kill()


def test_serve_frames_from_files(tmp_path):
    """-i LIST: frames written to HDF5 files come back pixel for pixel over PUB."""
    from readers.encode import encode_hdf5
    from readers.sender import file_frames
    det = simple_detector(n=96, clen=0.04)
    want = list(simulate_frames(SimulationConfig(det, LYSOZYME), 3, seed=30))
    names = []
    for i, frame in enumerate(want):
        name = tmp_path / f"frame_{i}.h5"
        name.write_bytes(encode_hdf5(frame, det))
        names.append(str(name))
    (tmp_path / "files.lst").write_text("\n".join(names) + "\n")
    server = FrameServer(file_frames(str(tmp_path / "files.lst"), det), det,
                         bind="tcp://127.0.0.1:*", mode="pub", wait_subscribers=1)
    server.start()
    try:
        sub = _socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(server.endpoint)
        for frame in want:
            topic, buf = sub.recv_multipart()
            assert np.array_equal(_pixels("msgpack", [buf], det)[0], frame.data[0])
        sub.close()
        assert server.wait(5) and server.sent == 3
    finally:
        server.stop()


@pytest.mark.parametrize("fmt,mode", [("msgpack", "rep"), ("hdf5", "pub"), ("seedee", "rep"),
                                      ("seedee", "pub")])
def test_readers_zmq_sources_decode_what_we_serve(frames, fmt, mode):
    """End to end with the project's own ZeroMQ sources and decoder."""
    zmq_source = pytest.importorskip("readers.zmq_source")
    from readers.decode import decode_message
    from readers.options import InputOptions
    det, sent = frames
    server = FrameServer(sent, det, bind="tcp://127.0.0.1:*", mode=mode, data_format=fmt,
                         wait_subscribers=1 if mode == "pub" else 0, count=len(sent))
    server.start()
    source = (zmq_source.ZmqReqSource(server.endpoint, "next") if mode == "rep"
              else zmq_source.ZmqSubSource(server.endpoint, ["ondaframedata"]))
    try:
        for frame in sent:
            message = source.next_message(10)
            assert message is not None
            got = decode_message(message, det, InputOptions(data_format=fmt))
            assert all(np.array_equal(a, b) for a, b in zip(got.data, frame.data))
            assert got.wavelength == pytest.approx(frame.wavelength, rel=1e-9)
    finally:
        source.close()
        server.stop()
