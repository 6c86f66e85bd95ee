"""An in-process ASAP::O stand-in: one HTTP server on 127.0.0.1 playing discovery, authorizer,
broker and file transfer, as the asapo_consumer 25.3.0 client speaks to them
(shared/spec/asapo-protocol.md §7-9). Fed directly from Python by the tests.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

FINISH_NAME = "asapo_finish_stream"
NO_NEXT = "asapo_no_next"


@dataclass
class _Stream:
    records: dict[int, dict] = field(default_factory=dict)
    data: dict[str, bytes] = field(default_factory=dict)  # name -> bytes
    created: int = field(default_factory=time.time_ns)
    last: int = field(default_factory=time.time_ns)
    meta: dict | None = None
    persistent: bool = False

    @property
    def max_id(self) -> int:
        return max(self.records, default=0)

    @property
    def finish(self) -> dict | None:
        rec = self.records.get(self.max_id)
        return rec if rec is not None and rec["name"] == FINISH_NAME else None

    @property
    def last_data_id(self) -> int:
        return self.max_id - 1 if self.finish is not None else self.max_id

    @property
    def size(self) -> int:
        return len(self.records) - (1 if self.finish is not None else 0)


@dataclass
class _Group:
    pointer: dict[str, int] = field(default_factory=lambda: {"_id": 0, "time_id": 0})
    acked: set[int] = field(default_factory=set)
    in_process: dict[int, list] = field(default_factory=dict)  # id -> [due, resends, max]
    last_delivered: int = 0


class AsapoStandin:
    """The broker's state behind one lock, and the HTTP server that serves it."""

    def __init__(self, tokens: tuple[str, ...] = ("test-token",), beamtime: str = "bt_test",
                 source: str = "detector", protocols: tuple[str, ...] = ("v0.7",)) -> None:
        self.tokens = set(tokens)
        self.beamtime = beamtime
        self.source = source
        self.protocols = set(protocols)
        self.lock = threading.Lock()
        self.streams: dict[tuple[str, str, str], _Stream] = {}
        self.groups: dict[tuple[str, str, str, str], _Group] = {}
        self.beamtime_meta: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self._group_counter = 0
        standin = self

        class Handler(_Handler):
            state = standin

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ----------------------------------------------------------- feeding API
    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> "AsapoStandin":
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "AsapoStandin":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _stream(self, stream: str, beamtime: str | None = None, source: str | None = None,
                create: bool = True) -> _Stream | None:
        key = (beamtime or self.beamtime, source or self.source, stream)
        if key not in self.streams and create:
            self.streams[key] = _Stream()
        return self.streams.get(key)

    def add_message(self, stream: str, data: bytes, meta: dict | None = None, *,
                    id: int | None = None, name: str | None = None,
                    beamtime: str | None = None, source: str | None = None) -> int:
        """Publish one message; returns its id (next free id unless given)."""
        with self.lock:
            st = self._stream(stream, beamtime, source)
            if st.finish is not None:
                raise ValueError(f"stream {stream} is finished")
            mid = id if id is not None else st.max_id + 1
            name = name or f"{source or self.source}/{stream}/{mid:08d}.bin"
            st.records[mid] = {"_id": mid, "time_id": mid, "size": len(data), "name": name,
                               "timestamp": time.time_ns(), "source": "", "ib_source": "",
                               "buf_id": 0, "stream": stream, "dataset_substream": 0,
                               "ingest_mode": 13, "meta": meta or {}}
            st.data[name] = bytes(data)
            st.last = time.time_ns()
            return mid

    def finish_stream(self, stream: str, next_stream: str | None = None, *,
                      beamtime: str | None = None, source: str | None = None) -> None:
        """Add the finish record (id last+1) naming the next stream, as a producer does."""
        with self.lock:
            st = self._stream(stream, beamtime, source)
            fid = st.max_id + 1
            st.records[fid] = {"_id": fid, "time_id": fid, "size": 0, "name": FINISH_NAME,
                               "timestamp": time.time_ns(), "source": "", "ib_source": "",
                               "buf_id": 0, "stream": stream, "dataset_substream": 0,
                               "ingest_mode": 13, "meta": {"next_stream": next_stream or NO_NEXT}}

    def set_stream_meta(self, stream: str, meta: dict) -> None:
        with self.lock:
            self._stream(stream).meta = meta

    def set_beamtime_meta(self, meta: dict) -> None:
        with self.lock:
            self.beamtime_meta[self.beamtime] = meta

    def group_pointer(self, stream: str, group: str) -> int:
        with self.lock:
            g = self.groups.get((self.beamtime, self.source, stream, group))
            return 0 if g is None else g.pointer["_id"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: AsapoStandin

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args) -> None:  # quiet
        pass

    # ----------------------------------------------------------- plumbing
    def _reply(self, code: int, body: bytes | str | dict | list = b"",
               ctype: str = "application/json") -> None:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
            ctype = "application/json" if body[:1] in (b"{", b"[") else "text/plain"
        self.send_response(code)
        self.send_header("Content-Type", ctype if code < 300 else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._handle("GET", b"")

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        self._handle("POST", self.rfile.read(n) if n else b"")

    def _handle(self, method: str, body: bytes) -> None:
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        st = self.state
        with st.lock:
            st.requests.append((method, self.path))
        if q.get("token") not in st.tokens and not url.path.startswith(
                ("/v0.2/transfer", "/asapo-discovery/")):  # discovery checks no token
            return self._reply(401, "wrong token")
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        try:
            if parts[0] == "asapo-discovery":
                return self._discovery(parts, q)
            if parts[0] == "asapo-authorizer":
                data = json.loads(body or b"{}")
                return self._reply(200, f"folder:{data.get('BeamtimeId', '')}", "text/plain")
            if parts[:2] == ["v0.2", "transfer"]:
                return self._transfer(q, body)
            if parts[0].startswith("v0."):
                if parts[0] not in st.protocols:
                    return self._reply(415, "unknown protocol")
                if parts[1:2] == ["creategroup"]:
                    with st.lock:
                        st._group_counter += 1
                        gid = f"g{time.time_ns():x}{st._group_counter:06d}"
                    return self._reply(200, gid, "text/plain")
                if parts[1] == "beamtime" and len(parts) >= 5:
                    return self._broker(method, parts[2], parts[3], parts[4:], q, body)
            return self._reply(404, "no such route")
        except (ValueError, KeyError, IndexError) as exc:
            return self._reply(400, f"bad request: {exc}")

    # ----------------------------------------------------------- services
    def _discovery(self, parts: list[str], q: dict) -> None:
        if q.get("protocol", "v0.7") not in self.state.protocols:
            return self._reply(415, "unknown protocol")
        what = parts[2] if len(parts) > 2 else ""
        if what in ("asapo-broker", "asapo-file-transfer"):
            return self._reply(200, self.state.endpoint, "text/plain")
        if what == "version":
            return self._reply(200, {"softwareVersion": "25.03.0-standin",
                                     "clientProtocol": {"versionInfo": "v0.7",
                                                        "microservicesApi": {}},
                                     "clientSupported": "yes",
                                     "supportedProtocols": sorted(self.state.protocols)})
        return self._reply(404, "unknown service")

    def _transfer(self, q: dict, body: bytes) -> None:
        cookie = self.headers.get("Cookie", "")
        if "Authorization=Bearer folder:" not in cookie:
            return self._reply(401, "no folder token")
        bt = cookie.split("folder:", 1)[1].strip()
        if "sizeonly" in q and not body:
            return self._reply(400, "no file name")
        name = json.loads(body)["FileName"]
        st = self.state
        with st.lock:
            blob = None
            for (b, _s, _n), stream in st.streams.items():
                if b == bt and name in stream.data:
                    blob = stream.data[name]
                    break
        if blob is None:
            return self._reply(404, "no such file")
        if q.get("sizeonly") == "true":
            return self._reply(200, {"file_size": len(blob)})
        return self._reply(200, blob, "application/octet-stream")

    def _no_data(self, i: int, m: int, nxt: str = "") -> None:
        self._reply(409, {"op": "get_record_by_id", "id": i, "id_max": m, "next_stream": nxt})

    def _finished(self, stream: _Stream) -> None:
        fin = stream.finish
        last = fin["_id"] - 1
        self._no_data(last, last, fin["meta"].get("next_stream") or NO_NEXT)

    def _broker(self, method: str, bt: str, source: str, rest: list[str], q: dict,
                body: bytes) -> None:
        st = self.state
        with st.lock:
            if rest[0] == "0" and len(rest) >= 2 and rest[1] in ("streams", "sources"):
                return self._lists(bt, source, rest[1], q)
            name = rest[0]
            stream = st.streams.get((bt, source, name))
            if len(rest) == 2 and rest[1] == "size":
                return self._reply(200, {"size": stream.size if stream else 0})
            if len(rest) == 2 and rest[1] in ("delete", "persist"):
                if rest[1] == "delete":
                    if stream is None:
                        return self._reply(400 if json.loads(body or b"{}").get(
                            "ErrorOnNotExist", True) else 200, "no such stream")
                    del st.streams[(bt, source, name)]
                elif stream is not None:
                    stream.persistent = True
                return self._reply(200, "")
            if len(rest) >= 3 and rest[2] == "meta":
                meta = (st.beamtime_meta.get(bt) if rest[-1] == "0"
                        else (stream.meta if stream else None))
                if meta is None:
                    return self._reply(409, "no meta")  # plain text: AsapoNoDataError
                return self._reply(200, meta)
            if q.get("dataset") == "true":
                return self._reply(400, "datasets are not supported by the stand-in")
            group_name = rest[1]
            op = rest[2] if len(rest) > 2 else ""
            if group_name == "0":
                return self._by_id_or_last(stream, op)
            g = st.groups.setdefault((bt, source, name, group_name), _Group())
            if op == "next":
                return self._next(stream, g, q)
            if op == "groupedlast":
                if stream is None or stream.last_data_id == 0 or \
                        g.last_delivered >= stream.last_data_id:
                    m = stream.max_id if stream else 0
                    return self._no_data(m, m)
                g.last_delivered = stream.last_data_id
                return self._reply(200, stream.records[stream.last_data_id])
            if op == "resetcounter":
                value = int(q.get("value", 0))
                g.pointer = {"_id": value, "time_id": value}
                g.in_process = {i: v for i, v in g.in_process.items() if i < value}
                g.acked = {i for i in g.acked if i < value}
                return self._reply(200, "")
            if op == "nacks":
                last = stream.last_data_id if stream else 0
                lo = int(q.get("from", 0) or 0) or 1
                hi = int(q.get("to", 0) or 0) or last
                return self._reply(200, {"unacknowledged": [i for i in range(lo, hi + 1)
                                                             if i not in g.acked and stream
                                                             and i in stream.records]})
            if op == "lastack":
                return self._reply(200, {"lastAckId": max(g.acked, default=0)})
            if op.isdigit() and method == "POST":
                mid = int(op)
                data = json.loads(body or b"{}")
                if data.get("Op") == "ackmessage":
                    if mid in g.acked:
                        return self._reply(400, "already acknowledged")
                    g.acked.add(mid)
                    g.in_process.pop(mid, None)
                    return self._reply(200, "")
                if data.get("Op") == "negackmessage":
                    delay = int((data.get("Params") or {}).get("DelayMs", 0))
                    g.in_process[mid] = [time.monotonic() + delay / 1000, 0, 1]
                    return self._reply(200, "")
                return self._reply(400, "unknown op")
        return self._reply(404, "no such route")

    def _lists(self, bt: str, source: str, what: str, q: dict) -> None:
        st = self.state
        if what == "sources":
            names = sorted({s for (b, s, _n) in st.streams if b == bt})
            return self._reply(200, {"sources": names})
        infos = []
        for (b, s, n), stream in sorted(st.streams.items(), key=lambda kv: kv[1].created):
            if b != bt or s != source:
                continue
            fin = stream.finish
            nxt = fin["meta"].get("next_stream", "") if fin else ""
            infos.append({"lastId": stream.last_data_id, "name": n,
                          "timestampCreated": stream.created, "timestampLast": stream.last,
                          "finished": fin is not None, "nextStream": "" if nxt == NO_NEXT else nxt})
        if q.get("from"):
            names = [i["name"] for i in infos]
            infos = infos[names.index(q["from"]):] if q["from"] in names else []
        flt = q.get("filter", "all")
        if flt == "finished":
            infos = [i for i in infos if i["finished"]]
        elif flt == "unfinished":
            infos = [i for i in infos if not i["finished"]]
        if q.get("single") == "true":
            infos = infos[:1]
        if q.get("last") == "true":
            infos = infos[-1:]
        if (q.get("single") == "true" or q.get("last") == "true") and not infos:
            return self._no_data(0, 0)
        return self._reply(200, {"streams": infos})

    def _by_id_or_last(self, stream: _Stream | None, op: str) -> None:
        m = stream.max_id if stream else 0
        if op == "last":
            if stream is None or stream.last_data_id == 0:
                return self._no_data(m, m)
            return self._reply(200, stream.records[stream.last_data_id])
        mid = int(op)
        rec = stream.records.get(mid) if stream else None
        if rec is not None and rec["name"] == FINISH_NAME and mid == m:
            return self._finished(stream)
        if rec is None:
            return self._no_data(mid, m)
        return self._reply(200, rec)

    def _next(self, stream: _Stream | None, g: _Group, q: dict) -> None:
        m = stream.max_id if stream else 0
        if m == 0:
            return self._no_data(0, 0)
        resend = q.get("resend_nacks") == "true"
        now = time.monotonic()
        if resend or g.in_process:
            for mid, entry in sorted(g.in_process.items()):
                due, count, limit = entry
                if due <= now and count < limit and mid not in g.acked:
                    entry[0] = now + int(q.get("delay_ms", 0) or 0) / 1000
                    entry[1] += 1
                    return self._reply(200, stream.records[mid])
        key = "time_id" if q.get("id_key") == "time_id" else "_id"
        ptr = g.pointer[key]
        if ptr >= m:
            if stream.finish is not None:
                return self._finished(stream)
            return self._no_data(m, m)
        ptr += 1
        g.pointer[key] = ptr
        rec = stream.records.get(ptr)
        if rec is not None and rec["name"] == FINISH_NAME:
            return self._finished(stream)
        if rec is None:
            return self._no_data(ptr, m)
        if resend and ptr not in g.in_process:
            g.in_process[ptr] = [now + int(q.get("delay_ms", 0) or 0) / 1000, 0,
                                 int(q.get("resend_attempts", 1) or 1)]
        return self._reply(200, rec)
