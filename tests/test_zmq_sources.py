"""ZeroMQ SUB and REQ sources over real sockets on 127.0.0.1."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import seedee
import zmq

from readers.decode import decode_message
from readers.errors import PayloadError, SourceOptionError
from readers.options import InputOptions
from readers.zmq_source import ZmqReqSource, ZmqSubSource, split_parts
from tests.test_readers_decode import make_detector, onda_msgpack, truth_image


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sub_two_prefixes_third_topic_ignored_and_bad_payloads_do_not_stop():
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    det = make_detector()
    src = ZmqSubSource(f"tcp://127.0.0.1:{port}", ["ondaframedata", "view:omframedata"],
                       serial_start=5)
    try:
        # slow joiner: publish a probe until the subscription has reached the publisher
        deadline = time.monotonic() + 10
        while src.next_message(timeout=0.05) is None:
            pub.send_multipart([b"ondaframedata", b"probe"])
            assert time.monotonic() < deadline
        while src.next_message(timeout=0.2) is not None:
            pass
        images = {i: truth_image(seed=100 + i) for i in range(9)}
        for i in range(9):
            body = onda_msgpack(images[i])
            if i % 3 == 0:
                pub.send_multipart([b"ondaframedata", body])  # OnDA two-frame, 13-byte tag
            elif i % 3 == 1:
                pub.send(b"view:omframedata" + body)  # single part, 16-byte topic in front
            else:
                pub.send_multipart([b"ondadata", body])  # not subscribed
            if i == 4:
                pub.send_multipart([b"ondaframedata", b"\x85garbage"])  # malformed
                pub.send(b"ondaframedata")  # a bare tag sent as its own message: skipped
        got = []
        while (m := src.next_message(timeout=1.0)) is not None:
            got.append(m)
        assert len(got) == 7
        frames, errors = [], []
        for m in got:
            try:
                frames.append(decode_message(m, det, InputOptions(data_format="msgpack")))
            except PayloadError as exc:
                errors.append(str(exc))
        assert len(errors) == 1 and "ZMQdata //" in errors[0]
        expected = [i for i in range(9) if i % 3 != 2]
        assert len(frames) == len(expected)
        for f, i in zip(frames, expected):
            np.testing.assert_array_equal(f.data[0], images[i])
        serials = [m.serial for m in got]
        assert serials == list(range(serials[0], serials[0] + 7))  # no gaps
        assert [m.event for m in got] == [f"//{s}" for s in serials]
        assert {m.metadata["topic"] for m in got} == {"ondaframedata", "view:omframedata"}
    finally:
        src.close()
        pub.close(0)
        ctx.term()


def test_split_parts_layouts():
    img = truth_image()
    buf, meta = seedee.serialize(img, seedee.COMPRESSION_LZ4)
    topic, payload, md = split_parts([buf.tobytes(), meta.encode()])
    assert topic == b"" and md["_data_format"] == meta
    topic, payload, md = split_parts([b"det", buf.tobytes(), meta.encode()])
    assert topic == b"det" and payload == buf.tobytes()
    det = make_detector(photon_energy=9000.0, clen=0.1)
    from readers.message import RawMessage
    frame = decode_message(RawMessage(1, "ZMQdata", "//1", payload, metadata=md), det,
                           InputOptions(data_format="seedee"))
    np.testing.assert_array_equal(frame.data[0], img)


class RestartingServer(threading.Thread):
    """A REP sender of frames 0..n-1 that dies twice: once right after answering, once after
    taking a request without answering it (the case that hangs CrystFEL)."""

    def __init__(self, port: int, n: int) -> None:
        super().__init__(daemon=True)
        self.port, self.n = port, n
        self.images = [truth_image(seed=200 + i) for i in range(n)]
        self.next_index = 0
        self.restarts = 0
        self.stop = False

    def run(self) -> None:
        try:
            self._serve()
        except Exception as exc:  # surfaced by the test
            self.error = exc

    error: Exception | None = None

    def _serve(self) -> None:
        ctx = zmq.Context()
        while self.next_index < self.n and not self.stop:
            rep = ctx.socket(zmq.REP)
            rep.setsockopt(zmq.LINGER, 2000)  # a reply already sent gets out before the "crash"
            rep.bind(f"tcp://127.0.0.1:{self.port}")
            session = 0
            while self.next_index < self.n and not self.stop:
                if not rep.poll(100):
                    continue
                request = rep.recv()
                assert request == b"next"
                if self.next_index == 7 and self.restarts == 1:
                    break  # crash with a request taken but never answered
                rep.send(onda_msgpack(self.images[self.next_index]))
                self.next_index += 1
                session += 1
                if self.next_index == 3 and self.restarts == 0:
                    break  # crash right after answering
            rep.close()
            if self.next_index < self.n and not self.stop:
                self.restarts += 1
                time.sleep(0.3)  # sender down for a while
        ctx.term()


def test_req_survives_sender_restarts_without_hang_or_loss():
    port = free_port()
    server = RestartingServer(port, 10)
    server.start()
    det = make_detector()
    src = ZmqReqSource(f"tcp://127.0.0.1:{port}", "next", request_timeout=0.5)
    got = []
    t0 = time.monotonic()
    try:
        while len(got) < 10:
            assert server.error is None, server.error
            assert time.monotonic() - t0 < 20, ("REQ source hung", server.next_index, server.restarts, server.is_alive(), src.retries, len(got))
            m = src.next_message(timeout=0.3)
            if m is not None:
                got.append(decode_message(m, det, InputOptions(data_format="msgpack")))
    finally:
        server.stop = True
        src.close()
        server.join(5)
    assert server.restarts == 2 and src.retries >= 1
    for frame, image in zip(got, server.images):
        np.testing.assert_array_equal(frame.data[0], image)
    assert [f.serial for f in got] == list(range(1, 11))


def test_req_timeout_returns_none_and_keeps_request_outstanding():
    port = free_port()
    src = ZmqReqSource(f"tcp://127.0.0.1:{port}", "next", request_timeout=5.0)
    try:
        t0 = time.monotonic()
        assert src.next_message(timeout=0.2) is None
        assert time.monotonic() - t0 < 1.0
        assert src.at_end and src.retries == 0
    finally:
        src.close()


def test_no_data_timeout_ends_an_idle_sub_source():
    src = ZmqSubSource(f"tcp://127.0.0.1:{free_port()}", [], no_data_timeout=0.3)
    try:
        assert not src.done
        assert src.next_message(timeout=0.4) is None
        assert src.done
    finally:
        src.close()


def test_unknown_data_format_is_refused():
    with pytest.raises(SourceOptionError, match="Unrecognised data format 'tiff'"):
        InputOptions(data_format="tiff")


def test_req_quiet_router_sender_loses_no_hit():
    """OM's ROUTER answers queued 'next' requests (oldest first) only when a hit comes. Quiet
    periods longer than the request timeout must not send hits to a dead requester."""
    from collections import deque
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    images = [truth_image(seed=300 + i) for i in range(4)]
    stop = threading.Event()

    def serve():
        queue: deque = deque(maxlen=20)
        hit_times = [time.monotonic() + 0.9 + 0.5 * i for i in range(len(images))]
        sent = 0
        while not stop.is_set() and sent < len(images):
            if router.poll(20):
                ident, empty, body = router.recv_multipart()
                queue.append(ident)
            if queue and time.monotonic() >= hit_times[sent]:
                router.send_multipart([queue.popleft(), b"", onda_msgpack(images[sent])])
                sent += 1

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    det = make_detector()
    src = ZmqReqSource(f"tcp://127.0.0.1:{port}", "next", request_timeout=0.25)
    got = []
    t0 = time.monotonic()
    try:
        while len(got) < len(images):
            assert time.monotonic() - t0 < 10, f"only {len(got)} hits arrived"
            m = src.next_message(timeout=0.2)
            if m is not None:
                got.append(decode_message(m, det, InputOptions(data_format="msgpack")))
    finally:
        stop.set()
        server.join(2)
        src.close()
        router.close(0)
        ctx.term()
    for frame, image in zip(got, images):
        np.testing.assert_array_equal(frame.data[0], image)
