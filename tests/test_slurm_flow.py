"""A flow on a real SLURM cluster through dask-jobqueue (two one-core jobs on this machine).

Skipped where SLURM is absent; CI sets CRYSTREAM_REQUIRE_SLURM=1 (after .ci/slurm-setup.sh),
which turns the skip into a failure.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.test_flow_helpers import GEOM, check_science, frame_ids, pipeline_config, \
    sample_frames

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(300)]


def _require_slurm() -> None:
    required = os.environ.get("CRYSTREAM_REQUIRE_SLURM") == "1"
    if shutil.which("sinfo") is None:
        if required:
            pytest.fail("CRYSTREAM_REQUIRE_SLURM=1 but sinfo is not installed "
                        "(run .ci/slurm-setup.sh)")
        pytest.skip("SLURM is not installed here (no sinfo); .ci/slurm-setup.sh sets it up")
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    usable = [s for s in out.stdout.split() if s.rstrip("*~#+$@").lower() in
              ("idle", "mixed", "mix", "allocated", "alloc", "completing", "comp")]
    if not usable:  # down, drained or no node at all (busy nodes are fine: jobs queue)
        msg = f"no usable SLURM node: sinfo says {out.stdout.strip() or out.stderr.strip()}"
        if required:
            pytest.fail(msg)
        pytest.skip(msg)


def test_slurm_flow_zmq_req(tmp_path):
    _require_slurm()
    from flows.config import FlowConfig
    from flows.run import start_flow
    from readers.options import InputOptions
    from readers.sender import FrameServer

    jobqueue = tmp_path / "slurm.yaml"
    jobqueue.write_text(yaml.safe_dump({
        "system": "slurm",
        "cluster": {"cores": 1, "processes": 1, "memory": "1GB", "walltime": "00:10:00",
                    "log_directory": str(tmp_path / "jobs"),
                    "scheduler_options": {"host": "127.0.0.1"},
                    "local_directory": str(tmp_path / "scratch")},
        "jobs": 2}))
    det, frames = sample_frames()
    with FrameServer(frames, det, bind="tcp://127.0.0.1:*", mode="rep",
                     data_format="msgpack") as server:
        cfg = FlowConfig(source="zmq_req", geometry=GEOM, output=str(tmp_path / "out.stream"),
                         input=InputOptions(zmq_input=server.endpoint, zmq_request="next",
                                            data_format="msgpack", copy_header=("frame_id",)),
                         pipeline=pipeline_config(), jobqueue=str(jobqueue),
                         dashboard_address=None, progress=False, frames_limit=12)
        with start_flow(cfg) as flow:
            # the workers are SLURM jobs running this very Python
            info = flow.client.run(lambda: (os.environ.get("SLURM_JOB_ID"), sys.executable),
                                   workers=flow.processing_workers())
            counters = flow.wait(180)
    assert len(info) == 2
    assert all(job and exe == sys.executable for job, exe in info.values()), info
    assert counters["processed"] == 12 and counters["failed"] == 0
    from crystream.stream.reader import read_stream
    chunks = read_stream(str(tmp_path / "out.stream")).chunks
    assert collections.Counter(frame_ids(chunks)) == {i: 1 for i in range(12)}
    check_science(chunks)
