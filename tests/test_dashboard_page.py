"""The crystream dashboard page, opened in headless Chromium after a flow has run.

Chromium is driven over its DevTools protocol: it loads /crystream, Bokeh's client builds
the page over its websocket, and the test reads, *in the browser*, the data behind the plots
(time series of frames/s, hit rate, peaks per frame; the header) and checks them against the
sample's truth and the writer's counters. A screenshot is saved in tmp_path. Skipped without
Chromium unless CRYSTREAM_REQUIRE_CHROMIUM=1 (CI).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from tests.test_flow_helpers import CELL, GEOM, pipeline_config, sample_files, truth

pytestmark = [pytest.mark.chromium, pytest.mark.timeout(240)]


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CRYSTREAM_REQUIRE_CHROMIUM") == "1":
            pytest.fail("CRYSTREAM_REQUIRE_CHROMIUM=1 but chromium is not installed")
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    return exe


class DevTools:
    """A minimal DevTools-protocol client for one page (tornado's websocket client)."""

    def __init__(self, exe: str, profile: str) -> None:
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--remote-debugging-port=0", f"--user-data-dir={profile}",
             "--window-size=1000,1400", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        self.port = None
        while time.time() < deadline and self.port is None:
            line = self.proc.stderr.readline()
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                self.port = int(m.group(1))
        assert self.port, "Chromium did not start its DevTools endpoint"
        pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list"))
        self.ws_url = next(p["webSocketDebuggerUrl"] for p in pages if p["type"] == "page")
        self.loop = asyncio.new_event_loop()
        from tornado.websocket import websocket_connect

        async def connect():
            return await websocket_connect(self.ws_url, max_message_size=1 << 26)

        self.ws = self.loop.run_until_complete(connect())
        self.next_id = 0

    def call(self, method: str, **params):
        async def go():
            self.next_id += 1
            await self.ws.write_message(json.dumps({"id": self.next_id, "method": method,
                                                    "params": params}))
            while True:
                msg = json.loads(await self.ws.read_message())
                if msg.get("id") == self.next_id:
                    assert "error" not in msg, msg
                    return msg["result"]
        return self.loop.run_until_complete(asyncio.wait_for(go(), 60))

    def evaluate(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in res:
            raise AssertionError(f"script error: {res['exceptionDetails']}")
        return res["result"].get("value")

    def close(self) -> None:
        self.ws.close()
        self.loop.close()
        self.proc.kill()
        self.proc.wait()


JS_STATE = """(() => {
  if (!window.Bokeh) return {n: 0, why: "no Bokeh", body: document.body ? document.body.innerHTML.slice(0, 300) : ""};
  if (Bokeh.documents.length == 0) return {n: 0, why: "no document"};
  const doc = Bokeh.documents[0];
  const ts = doc.get_model_by_name('timeseries');
  const head = doc.get_model_by_name('crystream-header');
  const figs = ['frames-per-second', 'rates', 'peaks-per-frame', 'in-flight', 'latency',
                'cell-a', 'cell-b', 'cell-c', 'cell-alpha', 'cell-beta', 'cell-gamma'];
  const hist = {};
  for (const p of ['a', 'b', 'c', 'alpha', 'beta', 'gamma']) {
    const src = doc.get_model_by_name('cellhist-' + p);
    hist[p] = {left: Array.from(src.data.left), right: Array.from(src.data.right),
               count: Array.from(src.data.count)};
  }
  return {n: ts.data.t.length, hit_rate: Array.from(ts.data.hit_rate),
          indexing_rate: Array.from(ts.data.indexing_rate),
          peaks: Array.from(ts.data.peaks), rate: Array.from(ts.data.rate), hist: hist,
          header: head.text, figures: figs.filter(f => doc.get_model_by_name(f) != null)};
})()"""


def test_dashboard_page_in_chromium(tmp_path):
    exe = _chromium()
    from flows.config import FlowConfig
    from flows.run import start_flow
    from readers.options import InputOptions
    lst = tmp_path / "files.lst"
    lst.write_text("".join(f"{p}\n" for p in sample_files() * 2))
    cfg = FlowConfig(source="files", geometry=GEOM, output=str(tmp_path / "out.stream"),
                     input=InputOptions(input=str(lst)), cell=CELL,
                     pipeline=pipeline_config(indexing=True),
                     workers=1, dashboard_address="127.0.0.1:0", progress=False)
    with start_flow(cfg) as flow:
        final = flow.wait(120)
        url = flow.dashboard_link
        assert url.endswith("/crystream")
        browser = DevTools(exe, str(tmp_path / "profile"))
        try:
            browser.call("Page.enable")
            browser.call("Page.navigate", url=url)
            state = None
            deadline = time.time() + 30
            while time.time() < deadline:
                try:
                    state = browser.evaluate(JS_STATE)
                except AssertionError as exc:  # a script error: report what the page says
                    state = {"n": 0, "error": str(exc)}
                if state and state["n"] > 0 and sum(state["hist"]["a"]["count"]) > 0:
                    break
                time.sleep(0.3)
            shot = browser.call("Page.captureScreenshot", format="png")
            (tmp_path / "dashboard.png").write_bytes(base64.b64decode(shot["data"]))
        finally:
            browser.close()
    assert state and state["n"] > 0, f"the page's plots have no data: {state}"
    assert len(state["figures"]) == 11, state["figures"]
    hits = sum(t["is_hit"] for t in truth()) * 2
    assert final["processed"] == 24 and final["hits"] == hits
    # what the browser shows is what the writer counted: 20 of 24 frames are hits,
    # about 20.8 zaef peaks per frame (CrystFEL 0.12.0 on these frames)
    assert state["hit_rate"][-1] == pytest.approx(hits / 24)
    assert state["peaks"][-1] == pytest.approx(final["peaks_per_frame"])
    assert 18 < state["peaks"][-1] < 24
    assert "<b>24</b> frames written" in state["header"]
    # every indexed crystal is in the cell histograms, around the sample's mC cell
    # (61.2, 91.4, 66.5 A, 90, 115, 90 deg; the 2-fold setting has the same parameters)
    assert final["indexed"] >= hits - 2 and state["indexing_rate"][-1] > 0.7
    for name, true in (("a", 61.2), ("b", 91.4), ("c", 66.5), ("alpha", 90.0), ("beta", 115.0),
                       ("gamma", 90.0)):
        h = state["hist"][name]
        assert sum(h["count"]) == final["crystals"], name
        peak = max(range(len(h["count"])), key=h["count"].__getitem__)
        centre = (h["left"][peak] + h["right"][peak]) / 2
        assert abs(centre - true) < max(0.02 * true, 1.0), (name, centre)
