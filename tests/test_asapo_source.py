"""AsapoSource with the real asapo_consumer 25.3.0 client against the in-process stand-in."""

from __future__ import annotations

import logging
import pickle
import threading
import time

import numpy as np
import pytest

pytest.importorskip("asapo_consumer")

from flows.cli import main as cli_main  # noqa: E402
from readers.asapo_source import AsapoSource  # noqa: E402
from readers.decode import decode_message  # noqa: E402
from readers.options import InputOptions  # noqa: E402
from tests.asapo_standin import AsapoStandin  # noqa: E402
from tests.test_readers_decode import make_detector, onda_msgpack, truth_image  # noqa: E402

TOKEN = "s3cret-token-value"


@pytest.fixture
def standin():
    with AsapoStandin(tokens=(TOKEN,), beamtime="bt1", source="det") as s:
        yield s


def source(standin, group="g1", stream="run1", **kw) -> AsapoSource:
    kw.setdefault("consumer_timeout", 200)
    kw.setdefault("no_data_timeout", 0.5)
    return AsapoSource(standin.endpoint, TOKEN, "bt1", "det", group, stream, **kw)


def publish(standin, stream: str, n: int, start_seed: int = 0) -> dict[int, np.ndarray]:
    images = {}
    for i in range(n):
        img = truth_image(seed=start_seed + i)
        mid = standin.add_message(stream, onda_msgpack(img), {"frame": i})
        images[mid] = img
    return images


def drain(src: AsapoSource, limit: float = 10.0) -> list:
    """Read until the source is done (no data for no_data_timeout)."""
    out = []
    t0 = time.monotonic()
    while not src.finished:
        assert time.monotonic() - t0 < limit, "source never finished"
        m = src.next_message()
        if m is not None:
            out.append(m)
    return out


def test_two_consumers_split_a_stream_without_duplicates_and_decode(standin):
    images = publish(standin, "run1", 40)
    standin.finish_stream("run1")
    got: dict[str, list] = {}

    def work(name):
        got[name] = drain(source(standin))

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [m.serial for m in got["a"]] + [m.serial for m in got["b"]]
    assert sorted(ids) == list(range(1, 41))  # each exactly once
    assert got["a"] and got["b"]
    det = make_detector()
    for m in got["a"] + got["b"]:
        assert m.event == "//" and m.filename == f"det/run1/{m.serial:08d}.bin"
        assert m.metadata == {"frame": m.serial - 1}
        frame = decode_message(m, det, InputOptions(data_format="msgpack"))
        np.testing.assert_array_equal(frame.data[0], images[m.serial])


def test_second_run_resumes_and_reset_starts_again(standin, capsys):
    publish(standin, "run1", 12)
    first = source(standin)
    taken = [first.next_message() for _ in range(5)]
    assert [m.serial for m in taken] == [1, 2, 3, 4, 5]
    first.close()
    rest = drain(source(standin))
    assert [m.serial for m in rest] == list(range(6, 13))
    rc = cli_main(["asapo-reset", "--asapo-endpoint", standin.endpoint, "--asapo-token", TOKEN,
                   "--asapo-beamtime", "bt1", "--asapo-source", "det", "--asapo-group", "g1",
                   "--asapo-stream", "run1"])
    assert rc == 0 and "next read is message 1" in capsys.readouterr().out
    again = drain(source(standin))
    assert [m.serial for m in again] == list(range(1, 13))


def test_end_of_stream_ends_the_run_after_no_data_timeout(standin):
    publish(standin, "run1", 3)  # never finished: EndOfStream after the consumer timeout
    src = source(standin, no_data_timeout=0.6)
    t0 = time.monotonic()
    got = drain(src)
    elapsed = time.monotonic() - t0
    assert [m.serial for m in got] == [1, 2, 3]
    assert 0.6 <= elapsed < 3.0
    # data arriving before the timeout runs out keeps the run going
    src2 = source(standin, group="g2", no_data_timeout=1.0)
    seen = []
    feeder = threading.Timer(0.5, lambda: publish(standin, "run1", 1, start_seed=50))
    feeder.start()
    seen = drain(src2)
    assert [m.serial for m in seen] == [1, 2, 3, 4]


def test_wait_for_stream_waits_for_an_empty_stream(standin):
    src = source(standin, stream="later", wait_for_stream=True, no_data_timeout=0.3)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        assert src.next_message() is None
        assert not src.finished
    publish(standin, "later", 2)
    standin.finish_stream("later")
    assert [m.serial for m in drain(src)] == [1, 2]
    # without the flag a missing stream ends the run after the timeout
    assert drain(source(standin, stream="missing", no_data_timeout=0.3)) == []


def test_follow_next_stream(standin):
    publish(standin, "run1", 2)
    standin.finish_stream("run1", "run2")
    publish(standin, "run2", 3, start_seed=10)
    standin.finish_stream("run2")
    src = source(standin, follow_next_stream=True)
    got = drain(src)
    assert [(m.ack_id[0], m.serial) for m in got] == [("run1", 1), ("run1", 2), ("run2", 1),
                                                      ("run2", 2), ("run2", 3)]
    plain = drain(source(standin, group="other"))
    assert [m.serial for m in plain] == [1, 2]


def test_unacknowledged_messages_come_back_after_a_crash(standin):
    publish(standin, "run1", 6)
    standin.finish_stream("run1")
    crashed = source(standin, acks=True, resend_delay_ms=300, resend_attempts=3)
    taken = [crashed.next_message() for _ in range(4)]
    for m in taken[:2]:
        crashed.acknowledge(m)  # chunks 1 and 2 were written; 3 and 4 were not
    del crashed  # the worker dies
    time.sleep(0.35)
    restarted = source(standin, acks=True, resend_delay_ms=300, resend_attempts=3)
    got = []
    t0 = time.monotonic()
    while len(got) < 4:
        assert time.monotonic() - t0 < 10
        m = restarted.next_message()
        if m is not None:
            got.append(m)
            restarted.acknowledge(m)
    assert sorted(m.serial for m in got) == [3, 4, 5, 6]


def test_token_never_shown(standin, tmp_path, caplog, capsys):
    src = source(standin)
    assert TOKEN not in repr(src) and "***" in repr(src)
    clone = pickle.loads(pickle.dumps(src))  # travels to a worker before first use
    assert clone.group == "g1"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    opts = InputOptions(asapo_endpoint=standin.endpoint, asapo_token_file=str(token_file),
                        asapo_beamtime="bt1", asapo_source="det", asapo_group="g9",
                        asapo_stream="run1", asapo_consumer_timeout=200)
    publish(standin, "run1", 1)
    assert AsapoSource.from_options(opts).next_message().serial == 1
    assert TOKEN not in repr(opts)
    bad = AsapoSource(standin.endpoint, "wrong" + TOKEN, "bt1", "det", "g1", "run1",
                      consumer_timeout=200)
    with caplog.at_level(logging.WARNING):
        assert bad.next_message() is None
    assert bad.errors == 1 and "wrong" + TOKEN not in caplog.text
    assert "Couldn't get next ASAP::O record" in caplog.text
    rc = cli_main(["asapo-reset", "--asapo-endpoint", standin.endpoint, "--asapo-token",
                   "wrong" + TOKEN, "--asapo-beamtime", "bt1", "--asapo-source", "det",
                   "--asapo-group", "g1", "--asapo-stream", "run1"])
    err = capsys.readouterr().err
    assert rc == 1 and "wrong" + TOKEN not in err and err.count("\n") == 1


def test_standin_speaks_the_rest_of_the_client_api(standin):
    """By id, last, gaps, negative acks, stream list/info, sources, meta, group ids."""
    import asapo_consumer as ac
    c = ac.create_consumer(standin.endpoint, "auto", False, "bt1", "det", TOKEN, 300, "auto",
                           "test")
    for i in (1, 2, 4):  # id 3 is missing: a gap
        standin.add_message("s1", bytes([i]) * 5, {"i": i}, id=i)
    data, meta = c.get_by_id(2, meta_only=False, stream="s1")
    assert data.tobytes() == b"\x02" * 5 and meta["meta"] == {"i": 2}
    assert c.get_last(meta_only=True, stream="s1")[1]["_id"] == 4
    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    ids = []
    for _ in range(4):
        try:
            ids.append(c.get_next("gg", meta_only=True, stream="s1")[1]["_id"])
        except ac.AsapoNoDataError:
            ids.append("nodata")
        except ac.AsapoEndOfStreamError:
            ids.append("end")
    assert ids == [1, 2, "nodata", 4]
    with pytest.raises(ac.AsapoEndOfStreamError):
        c.get_by_id(9, stream="s1")
    c.neg_acknowledge("gg", 2, delay_ms=0, stream="s1")
    assert c.get_next("gg", meta_only=True, stream="s1")[1]["_id"] == 2  # re-delivered
    c.acknowledge("gg", 1, stream="s1")
    with pytest.raises(ac.AsapoWrongInputError):
        c.acknowledge("gg", 1, stream="s1")  # already acknowledged
    standin.finish_stream("s1", "s2")
    standin.add_message("s2", b"x")
    streams = c.get_stream_list(filter="finished")
    assert [(s["name"], s["lastId"], s["nextStream"]) for s in streams] == [("s1", 4, "s2")]
    assert [s["name"] for s in c.get_stream_list(filter="all")] == ["s1", "s2"]
    assert c.get_current_size("s1") == 3
    with pytest.raises(ac.AsapoStreamFinishedError):
        c.get_by_id(5, stream="s1")
    assert c.get_source_list() == ["det"]
    with pytest.raises(ac.AsapoNoDataError):
        c.get_beamtime_meta()
    standin.set_stream_meta("s2", {"run": 7})
    assert c.get_stream_meta("s2") == {"run": 7}
    assert c.generate_group_id() != c.generate_group_id()
    bad = ac.create_consumer(standin.endpoint, "auto", False, "bt1", "det", "nope", 300)
    with pytest.raises(ac.AsapoWrongInputError):
        bad.get_last(stream="s1")


def test_seedee_and_msgpack_peaks_over_asapo(standin):
    """Seedee meta and header values from the ASAP::O user metadata; --peaks=msgpack from an
    ASAP::O payload (CrystFEL: ZMQ only)."""
    import seedee
    img = truth_image(seed=77).astype(np.uint16)
    buf, meta = seedee.serialize(img, seedee.COMPRESSION_BITSHUFFLE)
    standin.add_message("mix", buf.tobytes(), {"_data_format": meta, "photon_energy_ev": 8100.0})
    standin.add_message("mix", onda_msgpack(img.astype(np.float32),
                                            peaks=([10.0], [20.0], [99.0])))
    standin.finish_stream("mix")
    got = drain(source(standin, stream="mix", no_data_timeout=0.2))
    det = make_detector(photon_energy="photon_energy_ev", clen=0.1)
    frame = decode_message(got[0], det, InputOptions())  # seedee detected from the metadata
    np.testing.assert_array_equal(frame.data[0], img)
    from crystream.constants import ev_to_wavelength
    assert frame.wavelength == pytest.approx(ev_to_wavelength(8100.0))
    frame = decode_message(got[1], make_detector(), InputOptions(peaks="msgpack"))
    assert list(frame.peaks.fs) == [10.0] and list(frame.peaks.intensity) == [99.0]


def _consume_in_process(endpoint: str, queue) -> None:
    src = AsapoSource(endpoint, TOKEN, "bt1", "det", "gp", "run1", consumer_timeout=200,
                      no_data_timeout=0.4)
    queue.put([m.serial for m in drain(src)])


def test_consumers_in_two_processes_split_the_group(standin):
    import multiprocessing as mp
    publish(standin, "run1", 60)
    standin.finish_stream("run1")
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_consume_in_process, args=(standin.endpoint, queue))
             for _ in range(2)]
    for p in procs:
        p.start()
    parts = [queue.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(10)
    assert sorted(parts[0] + parts[1]) == list(range(1, 61))
