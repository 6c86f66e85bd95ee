"""cluster/: the local cluster's shape, scheduler addresses, the jobqueue YAML file, and a
flow on an existing scheduler (--scheduler) that the flow must leave running."""

from __future__ import annotations

import os
import sys

import pytest

from tests.test_flow_helpers import GEOM, pipeline_config, sample_files

pytestmark = pytest.mark.timeout(180)


def test_local_cluster_processes_one_thread_each(tmp_path):
    from cluster import get_cluster
    handle = get_cluster(workers=2, dashboard_address=None, local_directory=str(tmp_path))
    try:
        dirs = handle.client.run(lambda dask_worker: dask_worker.local_directory)
        assert all(d.startswith(str(tmp_path)) for d in dirs.values())  # --temp-dir
        info = handle.client.scheduler_info(n_workers=-1)["workers"]
        assert len(info) == 2 and all(w["nthreads"] == 1 for w in info.values())
        pids = handle.client.run(os.getpid)
        assert os.getpid() not in pids.values() and len(set(pids.values())) == 2
        assert handle.dashboard_link.startswith("http://127.0.0.1:")  # localhost only
    finally:
        handle.close()


def test_scheduler_address_checks():
    from cluster.scheduler import scheduler_address
    assert scheduler_address("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    assert scheduler_address("node12:8786") == "tcp://node12:8786"
    with pytest.raises(ValueError, match="--scheduler: 'not an address' is not"):
        scheduler_address("not an address")


def _yaml(tmp_path, text):
    p = tmp_path / "jq.yaml"
    p.write_text(text)
    return str(p)


def test_jobqueue_yaml_good_and_bad(tmp_path):
    from cluster.jobqueue import JobqueueConfigError, expected_workers, load_jobqueue_config
    cfg = load_jobqueue_config(_yaml(tmp_path, "system: SLURM\ncluster: {cores: 1, processes: 2,"
                                               " memory: 1GB}\njobs: 3\n"))
    assert cfg.system == "slurm" and cfg.jobs == 3 and not cfg.adaptive
    assert expected_workers(cfg) == 6
    cfg = load_jobqueue_config(_yaml(tmp_path, "system: pbs\nadapt: {maximum_jobs: 8}\n"))
    assert cfg.adaptive and cfg.minimum_jobs == 1 and cfg.maximum_jobs == 8
    bad = {"system: slurm\njobs: 2\nadapt: {maximum_jobs: 3}\n": "not both",
           "system: torque\n": "system 'torque' is not one of",
           "system: slurm\nworkers: 3\n": "unknown key(s) workers",
           "system: slurm\ncluster: [1, 2]\n": "'cluster' must be a mapping",
           "system: slurm\ncluster: {cores: 1\n": ":3: not valid YAML"}
    for text, message in bad.items():
        path = _yaml(tmp_path, text)
        with pytest.raises(JobqueueConfigError) as err:
            load_jobqueue_config(path)
        assert message in str(err.value) and str(err.value).startswith(path)
    with pytest.raises(JobqueueConfigError, match="cannot read"):
        load_jobqueue_config(str(tmp_path / "missing.yaml"))


def test_jobqueue_job_script_runs_this_python(tmp_path):
    """The batch job starts workers with the client's own Python, one thread each."""
    from cluster.jobqueue import JobqueueConfig, jobqueue_cluster
    for system in ("slurm", "pbs", "sge", "lsf", "htcondor"):
        extra = {"disk": "1GB"} if system == "htcondor" else {}
        cfg = JobqueueConfig(system, {"cores": 1, "memory": "1GB", **extra}, jobs=0)
        cluster = jobqueue_cluster(cfg)
        try:
            script = cluster.job_script()
        finally:
            cluster.close()
        assert sys.executable in script, (system, script)
        assert "--nthreads 1" in script, (system, script)
        assert "MALLOC_MMAP_THRESHOLD_" in script or system == "htcondor", (system, script)


def test_flow_on_existing_scheduler(tmp_path):
    from distributed import Client, LocalCluster
    from crystream.stream.reader import read_stream
    from flows.config import FlowConfig
    from flows.run import start_flow
    from readers.options import InputOptions
    lst = tmp_path / "files.lst"
    lst.write_text("".join(f"{p}\n" for p in sample_files()))
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as external:
        cfg = FlowConfig(source="files", geometry=GEOM, output=str(tmp_path / "out.stream"),
                         input=InputOptions(input=str(lst)), pipeline=pipeline_config(),
                         scheduler=external.scheduler_address, dashboard_address=None,
                         progress=False)
        with start_flow(cfg) as flow:
            counters = flow.wait(120)
            assert len(flow.processing_workers()) == 2
        # the flow leaves a scheduler it did not start running, with its workers
        with Client(external.scheduler_address) as c:
            assert len(c.scheduler_info(n_workers=-1)["workers"]) == 2
    assert counters["processed"] == 12 and counters["hits"] == 10
    assert [c.serial for c in read_stream(str(tmp_path / "out.stream")).chunks] == \
        list(range(1, 13))
