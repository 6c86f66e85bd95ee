"""The writer with a file list, without a cluster: a list entry handed to one connection but
not yet tracked by it is never skipped as a gap, even with the reorder buffer full (this
wrote serials out of order in test_flow_files_worker_killed, where a third connection's
entries were in flight while the buffer was full).

Chunks are real: sample frames processed by crystream.pipeline.process_frame, checked after
the round trip through the stream file against the sample's truth.
"""

from __future__ import annotations

import time

from tests.test_flow_helpers import GEOM, check_science, pipeline_config, sample_files, \
    truth


def _result(path: str):
    from crystream.geometry.parser import load_geometry
    from crystream.pipeline import process_frame
    from flows.pipeline_task import FrameResult
    from readers.decode import decode_message
    from readers.message import RawMessage
    from readers.options import InputOptions
    det = load_geometry(GEOM)
    frame = decode_message(RawMessage(serial=0, filename=path, path=path), det, InputOptions())
    return FrameResult(process_frame(frame, det, None, pipeline_config()), None, path,
                       time.time(), time.time())


def test_untracked_file_entry_is_waited_for_with_full_buffer(tmp_path):
    from crystream.stream.reader import read_stream
    from flows.config import FlowConfig
    from flows.writer import Writer
    from readers.options import InputOptions
    files = sample_files()[:3]
    lst = tmp_path / "files.lst"
    lst.write_text("".join(f"{p}\n" for p in files))
    cfg = FlowConfig(source="files", geometry=GEOM, output=str(tmp_path / "o.stream"),
                     input=InputOptions(input=str(lst)), max_in_flight=2, progress=False,
                     log_errors=False)
    w = Writer("test", cfg, n_connections=2)
    w.GAP_WAIT = 0.0  # a real gap would be skipped at once
    first, _ = w.take(0, 1)  # serial 1 goes to connection 0, which is slow to track it
    later, exhausted = w.take(1, 5)
    assert [m.serial for m in first] == [1] and [m.serial for m in later] == [2, 3]
    assert exhausted
    results = {m.serial: _result(m.path) for m in first + later}
    # connection 1 tracks and delivers 2 and 3: the buffer (2 frames) is full
    report = w.track(1, [(i, m.serial, m.filename, m.event, time.time())
                         for i, m in enumerate(later)],
                     results=[(i, results[m.serial]) for i, m in enumerate(later)])
    time.sleep(0.01)
    # 2 and 3 wait for serial 1, handed out but not yet tracked
    assert report["written"] == [] and w.poll(1)["written"] == []
    report = w.track(0, [(0, 1, first[0].filename, first[0].event, time.time())],
                     results=[(0, results[1])])
    assert report["written"] == [0] and w.poll(1)["written"] == [0, 1]
    w.connection_done(0)
    w.connection_done(1)
    assert w.all_done()
    w.close()
    stream = read_stream(str(tmp_path / "o.stream"))
    assert not stream.problems, stream.problems
    chunks = stream.chunks
    assert [c.serial for c in chunks] == [1, 2, 3]
    assert [c.filename for c in chunks] == files
    for c in chunks:
        c.headers.append(("frame_id", c.serial - 1))  # identity from the list position
    check_science(chunks)
    assert [c.hit for c in chunks] == [t["is_hit"] for t in truth()[:3]]
