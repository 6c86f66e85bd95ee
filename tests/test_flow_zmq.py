"""End to end over ZeroMQ on a LocalCluster of 2 worker processes: REQ (two connections
sharing the load) and SUB (one connection spreading frames over both workers).

Ground truth: the sample's hit flags and CrystFEL's zaef peak counts per frame; every frame is
in the stream exactly once; serial numbers increase; for SUB (one ordered connection) the
stream order is the send order although the two workers finish frames out of order.
"""

from __future__ import annotations

import collections

import pytest

from tests.test_flow_helpers import GEOM, check_science, frame_ids, pipeline_config, \
    sample_frames

pytestmark = pytest.mark.timeout(180)


def _config(tmp_path, source, endpoint, **kw):
    from flows.config import FlowConfig
    from readers.options import InputOptions
    inp = dict(zmq_input=endpoint, data_format="msgpack", copy_header=("frame_id",),
               no_data_timeout=kw.pop("no_data_timeout", 60))
    if source == "zmq_req":
        inp["zmq_request"] = "next"
    else:
        inp["zmq_subscribe"] = ("ondaframedata",)
    return FlowConfig(source=source, geometry=GEOM, output=str(tmp_path / "out.stream"),
                      input=InputOptions(**inp), pipeline=pipeline_config(), workers=2,
                      dashboard_address=None, progress=False, **kw)


def _read(path):
    from crystream.stream.reader import read_stream
    stream = read_stream(str(path))
    assert not stream.problems, stream.problems
    return stream.chunks


def test_flow_zmq_req_two_connections(tmp_path):
    from flows.run import start_flow
    from readers.sender import FrameServer
    det, frames = sample_frames(repeat=2)
    with FrameServer(frames, det, bind="tcp://127.0.0.1:*", mode="rep",
                     data_format="msgpack") as server:
        cfg = _config(tmp_path, "zmq_req", server.endpoint, frames_limit=24)
        with start_flow(cfg) as flow:
            counters = flow.wait(120)
    assert counters["processed"] == 24 and counters["failed"] == 0
    chunks = _read(tmp_path / "out.stream")
    assert len(chunks) == 24
    assert collections.Counter(frame_ids(chunks)) == {i: 2 for i in range(12)}
    serials = [c.serial for c in chunks]
    assert serials == list(range(1, 25))  # writer-assigned, in order, no gaps
    assert [c.event for c in chunks] == [f"//{s}" for s in serials]
    check_science(chunks)
    ingest = counters["ingest_stats"]
    assert len(ingest) == 2 and all(s["received"] > 0 for s in ingest), ingest


def test_flow_zmq_sub_one_connection_in_order(tmp_path):
    from flows.run import start_flow
    from readers.sender import FrameServer
    det, frames = sample_frames(repeat=2)
    server = FrameServer(frames, det, bind="tcp://127.0.0.1:*", mode="pub",
                         data_format="msgpack", wait_subscribers=1, rate=40)
    server.start()
    try:
        cfg = _config(tmp_path, "zmq_sub", server.endpoint, no_data_timeout=2,
                      max_in_flight=64)
        with start_flow(cfg) as flow:
            counters = flow.wait(120)
    finally:
        server.stop()
    assert server.sent == 24
    assert counters["dropped"] == 0 and counters["failed"] == 0
    chunks = _read(tmp_path / "out.stream")
    # one SUB connection: stream order is send order, each frame once
    assert frame_ids(chunks) == list(range(12)) * 2
    assert [c.serial for c in chunks] == list(range(1, 25))
    check_science(chunks)
    workers = {s["worker"] for s in counters["ingest_stats"]}
    assert len(workers) == 1  # exactly one SUB actor


def test_flow_zmq_sub_drops_and_counts_when_full(tmp_path):
    """A publisher faster than the workers with 2 frames in flight at most: SUB drops frames
    instead of queueing them; every frame sent is either written once or counted dropped."""
    from flows.run import start_flow
    from readers.sender import FrameServer
    det, frames = sample_frames(repeat=4)
    server = FrameServer(frames, det, bind="tcp://127.0.0.1:*", mode="pub",
                         data_format="msgpack", wait_subscribers=1)
    server.start()
    try:
        cfg = _config(tmp_path, "zmq_sub", server.endpoint, no_data_timeout=2,
                      max_in_flight=2)
        with start_flow(cfg) as flow:
            counters = flow.wait(120)
    finally:
        server.stop()
    chunks = _read(tmp_path / "out.stream")
    assert counters["dropped"] > 0 and counters["failed"] == 0
    assert counters["received"] == server.sent == 48
    assert len(chunks) + counters["dropped"] == 48
    sent_ids = [i % 12 for i in range(48)]  # four passes over the 12 frames
    ids = frame_ids(chunks)
    # each written frame once, in send order (a subsequence of what was sent)
    pos = 0
    for fid in ids:
        while pos < 48 and sent_ids[pos] != fid:
            pos += 1
        assert pos < 48, f"frame {fid} out of send order in {ids}"
        pos += 1
    assert [c.serial for c in chunks] == list(range(1, len(chunks) + 1))
    check_science(chunks)


def test_flow_zmq_bad_frames_logged_counted_run_goes_on(tmp_path):
    """Every third reply is not a decodable payload: each such frame is reported with one
    line naming it, counted as failed, leaves no chunk; the others are written in order."""
    import threading

    import zmq

    from flows.run import start_flow
    from readers.encode import encode_frame
    det, frames = sample_frames()
    good = [encode_frame(f, det, "msgpack")[0] for f in frames]
    replies = []
    for i, payload in enumerate(good):
        replies.append(payload)
        if i % 2 == 1:
            replies.append(b"\x85this is not a detector frame" * 4)
    ctx = zmq.Context.instance()
    rep = ctx.socket(zmq.REP)
    port = rep.bind_to_random_port("tcp://127.0.0.1")

    def serve():
        for r in replies:
            rep.recv()
            rep.send(r)

    threading.Thread(target=serve, daemon=True).start()
    try:
        cfg = _config(tmp_path, "zmq_req", f"tcp://127.0.0.1:{port}",
                      frames_limit=len(replies)).with_(workers=1)
        with start_flow(cfg) as flow:
            counters = flow.wait(120)
    finally:
        rep.close(0)
    n_bad = len(replies) - len(good)
    assert counters["failed"] == n_bad and counters["processed"] == len(good)
    errors = counters["errors"]
    assert len(errors) == n_bad
    bad_serials = [i + 1 for i, r in enumerate(replies) if r not in good]
    for line, serial in zip(errors, bad_serials):
        assert line.startswith(f"crystream: frame ZMQdata //{serial} (serial {serial}) failed:")
        assert "\n" not in line
    chunks = _read(tmp_path / "out.stream")
    assert frame_ids(chunks) == list(range(12))
    assert [c.serial for c in chunks] == [s for s in range(1, len(replies) + 1)
                                          if s not in bad_serials]
    check_science(chunks)


def test_flow_zmq_sub_worker_killed(tmp_path):
    """SIGKILL the worker that does not hold the SUB connection while it processes frames:
    the frames it had are sent again to a live worker; all are written once, in order."""
    import os
    import signal
    import time

    from flows.run import start_flow
    from readers.sender import FrameServer
    det, frames = sample_frames(repeat=4)
    server = FrameServer(frames, det, bind="tcp://127.0.0.1:*", mode="pub",
                         data_format="msgpack", wait_subscribers=1, rate=25)
    server.start()
    try:
        cfg = _config(tmp_path, "zmq_sub", server.endpoint, no_data_timeout=3,
                      max_in_flight=64)
        with start_flow(cfg) as flow:
            while flow.counters.get("processed", 0) < 8:
                time.sleep(0.05)
            sub_worker = flow.counters["ingest_stats"][0]["worker"]
            other = [w for w in flow.processing_workers() if w != sub_worker][0]
            pid = flow.client.run(os.getpid, workers=[other])[other]
            os.kill(pid, signal.SIGKILL)
            counters = flow.wait(120)
    finally:
        server.stop()
    assert server.sent == 48
    assert counters["dropped"] == 0 and counters["failed"] == 0, counters["errors"]
    chunks = _read(tmp_path / "out.stream")
    assert frame_ids(chunks) == list(range(12)) * 4
    assert [c.serial for c in chunks] == list(range(1, 49))
    check_science(chunks)
