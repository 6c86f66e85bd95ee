"""The writer's ordering rules, without a cluster: chunks come out in serial order whatever
order frames finish in; failures, duplicates (recomputed tasks) and serial gaps.

Chunks are real: the 12 sample frames processed by crystream.pipeline.process_frame, checked
after the round trip through the stream file against the sample's truth.
"""

from __future__ import annotations

import random
import time

import pytest

from tests.test_flow_helpers import GEOM, check_science, frame_ids, pipeline_config, \
    sample_frames


@pytest.fixture(scope="module")
def results():
    from crystream.pipeline import process_frame
    from flows.pipeline_task import FrameResult
    det, frames = sample_frames()
    out = []
    for f in frames:
        chunk = process_frame(f, det, None, pipeline_config())
        out.append(FrameResult(chunk, None, f.filename, time.time(), time.time()))
    return out


def _writer(tmp_path, source="asapo"):
    from flows.config import FlowConfig
    from flows.writer import Writer
    cfg = FlowConfig(source=source, geometry=GEOM, output=str(tmp_path / "o.stream"),
                     progress=False, log_errors=False)
    return Writer("test", cfg, n_connections=1)


def _chunks(tmp_path):
    from crystream.stream.reader import read_stream
    s = read_stream(str(tmp_path / "o.stream"))
    assert not s.problems, s.problems
    return s.chunks


def test_writer_orders_out_of_order_completions(tmp_path, results):
    w = _writer(tmp_path)
    w.track(0, [(i, i + 1, f"sample_{i:02d}.h5", "//", time.time()) for i in range(12)])
    order = list(range(12))
    random.Random(3).shuffle(order)
    written = []
    for i in order:
        w.deliver(0, i, results[i])
        written += w.poll(0)["written"]
        # only a gap-free prefix of the serials is ever written
        assert written == list(range(len(written)))
    w.close()
    chunks = _chunks(tmp_path)
    assert [c.serial for c in chunks] == list(range(1, 13))
    assert frame_ids(chunks) == list(range(12))
    check_science(chunks)


def test_writer_failures_duplicates_and_gaps(tmp_path, results):
    from flows.pipeline_task import FrameResult
    w = _writer(tmp_path)
    serials = [1, 2, 3, 5, 6, 9]  # 4, 7, 8 never arrive (e.g. ASAP::O ids, SUB drops)
    w.track(0, [(i, s, f"f{s}", "//", time.time()) for i, s in enumerate(serials)])
    failed = FrameResult(None, "PayloadError: truncated", "f3", 0.0, 0.0)
    for i in reversed(range(6)):
        w.deliver(0, i, failed if i == 2 else results[i])
    assert w.deliver(0, 0, results[0]) is False  # a recomputed task's second delivery
    report = w.poll(0)
    # 1, 2 written, 3 failed; 5 waits for the missing 4 (it may still come from another
    # connection) for up to GAP_WAIT seconds
    assert report["written"] == [0, 1] and report["failed"] == [2]
    w.track(0, [(9, 4, "f4", "//", time.time())])  # 4 arrives late, within the wait
    w.deliver(0, 9, results[9])
    assert w.poll(0)["written"] == [9, 3, 4]  # 4, 5, 6 in order; 9 waits for 7 and 8
    w.GAP_WAIT = 0.2
    time.sleep(0.3)
    assert w.poll(0)["written"] == [5]  # nothing came: the gap is skipped
    snap = w.close()
    assert snap["processed"] == 6 and snap["failed"] == 1
    assert "f3" in snap["errors"][0] and "PayloadError: truncated" in snap["errors"][0]
    chunks = _chunks(tmp_path)
    assert [c.serial for c in chunks] == [1, 2, 4, 5, 6, 9]
    assert frame_ids(chunks) == [0, 1, 9, 3, 4, 5]


def test_writer_assigns_zmq_serials_in_arrival_order(tmp_path, results):
    w = _writer(tmp_path, source="zmq_req")
    w.track(0, [(i, None, "ZMQdata", None, time.time()) for i in range(3)])
    for i in (2, 0, 1):
        w.deliver(0, i, results[i + 6])
    w.close()
    chunks = _chunks(tmp_path)
    assert [(c.serial, c.event, c.filename) for c in chunks] == \
        [(1, "//1", "ZMQdata"), (2, "//2", "ZMQdata"), (3, "//3", "ZMQdata")]
    assert frame_ids(chunks) == [6, 7, 8]
