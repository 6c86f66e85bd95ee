"""ASAP::O end to end through the broker stand-in (tests/asapo_standin.py), on a LocalCluster
of 2 worker processes with one consumer per worker in one group: every message is processed
once, the chunks carry ASAP::O's identity (message name, "//", message id) in id order, each
message is acknowledged after its chunk is written, and the science matches the sample truth.
"""

from __future__ import annotations

import collections

import pytest

pytest.importorskip("asapo_consumer")

from tests.asapo_standin import AsapoStandin  # noqa: E402
from tests.test_flow_helpers import GEOM, check_science, frame_ids, pipeline_config, \
    sample_frames  # noqa: E402

pytestmark = pytest.mark.timeout(180)
TOKEN = "flow-test-token"


def test_flow_asapo_two_consumers(tmp_path):
    from crystream.stream.reader import read_stream
    from flows.config import FlowConfig
    from flows.run import start_flow
    from readers.encode import encode_frame
    from readers.options import InputOptions
    det, frames = sample_frames(repeat=2)
    with AsapoStandin(tokens=(TOKEN,), beamtime="bt1", source="det") as standin:
        ids = [standin.add_message("run1", encode_frame(f, det, "msgpack", None)[0],
                                   {"frame": i}) for i, f in enumerate(frames)]
        standin.finish_stream("run1")
        inp = InputOptions(asapo_endpoint=standin.endpoint, asapo_token=TOKEN,
                           asapo_beamtime="bt1", asapo_source="det", asapo_group="g1",
                           asapo_stream="run1", data_format="msgpack",
                           copy_header=("frame_id",), asapo_consumer_timeout=200,
                           no_data_timeout=1)
        cfg = FlowConfig(source="asapo", geometry=GEOM, output=str(tmp_path / "out.stream"),
                         input=inp, pipeline=pipeline_config(), workers=2,
                         dashboard_address=None, progress=False)
        with start_flow(cfg) as flow:
            counters = flow.wait(120)
        acked = [g.acked for g in standin.groups.values() if g.acked]
    assert counters["processed"] == 24 and counters["failed"] == 0
    stats = counters["ingest_stats"]
    assert len(stats) == 2 and all(s["received"] > 0 for s in stats), stats  # load shared
    chunks = read_stream(str(tmp_path / "out.stream")).chunks
    assert [c.serial for c in chunks] == ids  # ASAP::O ids, in order, each once
    assert all(c.event == "//" and c.filename == f"det/run1/{c.serial:08d}.bin"
               for c in chunks)
    assert frame_ids(chunks) == list(range(12)) * 2
    assert collections.Counter(frame_ids(chunks)) == {i: 2 for i in range(12)}
    check_science(chunks)
    assert acked == [set(ids)]  # every message acknowledged (after its chunk was written)
