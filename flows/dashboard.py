"""The crystream page of the Dask dashboard (/crystream): one Bokeh document per browser tab.

A periodic callback (every 500 ms) reads the counters that the writer actor publishes to the
scheduler (``set_metadata(["crystream", flow_id], snapshot)``) and updates: frames/s, hit and
indexing rate, peaks per frame, frames in flight, dropped and failed frames, latency from
arrival to written chunk, and histograms of the six unit-cell parameters.
Registered in distributed's dashboard application table before the scheduler starts (the
embedded and jobqueue schedulers run in our process); for an external scheduler, start it with
``dask scheduler --preload flows.dashboard``.
"""

from __future__ import annotations

ROUTE = "/crystream"
RATE_KEYS = (("rate", "frames/s"), ("hit_rate", "hit rate"), ("indexing_rate", "indexing rate"))


def latest_snapshot(scheduler) -> dict:
    """The most recent flow's snapshot in the scheduler's metadata, or {}."""
    try:
        flows = scheduler.get_metadata(keys=["crystream"], default={})
    except Exception:  # noqa: BLE001
        return {}
    if not isinstance(flows, dict) or not flows:
        return {}
    return max(flows.values(), key=lambda s: s.get("time", 0) if isinstance(s, dict) else 0)


def crystream_doc(scheduler, extra, doc) -> None:
    """Build the page for one browser tab."""
    from bokeh.layouts import column, gridplot, row
    from bokeh.models import ColumnDataSource, Div
    from bokeh.plotting import figure

    from flows.metrics import CELL_PARAMETERS, CELL_UNITS

    doc.title = "crystream"
    header = Div(text="<h2>crystream</h2><p>waiting for a flow...</p>", width=900,
                 name="crystream-header")
    ts = ColumnDataSource({k: [] for k in ("t", "rate", "hit_rate", "indexing_rate",
                                           "peaks", "in_flight", "dropped", "failed",
                                           "lat_med", "lat_p95")}, name="timeseries")
    opts = dict(height=220, width=440, x_axis_label="time since the run started (s)",
                tools="pan,wheel_zoom,box_zoom,reset,save")
    f_rate = figure(title="frames/s", name="frames-per-second", **opts)
    f_rate.line("t", "rate", source=ts, line_width=2)
    f_rate.scatter("t", "rate", source=ts, size=4)
    f_frac = figure(title="hit rate and indexing rate", name="rates", y_range=(0, 1.05),
                    **opts)
    f_frac.line("t", "hit_rate", source=ts, line_width=2, color="#1f77b4", legend_label="hits")
    f_frac.scatter("t", "hit_rate", source=ts, size=4, color="#1f77b4")
    f_frac.line("t", "indexing_rate", source=ts, line_width=2, color="#2ca02c",
                legend_label="indexed")
    f_frac.legend.location = "bottom_left"
    f_peaks = figure(title="peaks per frame", name="peaks-per-frame", **opts)
    f_peaks.line("t", "peaks", source=ts, line_width=2)
    f_peaks.scatter("t", "peaks", source=ts, size=4)
    f_flow = figure(title="frames in flight, dropped, failed", name="in-flight", **opts)
    f_flow.line("t", "in_flight", source=ts, line_width=2, legend_label="in flight")
    f_flow.line("t", "dropped", source=ts, line_width=2, color="#ff7f0e",
                legend_label="dropped")
    f_flow.line("t", "failed", source=ts, line_width=2, color="#d62728", legend_label="failed")
    f_flow.legend.location = "top_left"
    f_lat = figure(title="latency, arrival to written chunk (ms)", name="latency", **opts)
    f_lat.line("t", "lat_med", source=ts, line_width=2, legend_label="median")
    f_lat.line("t", "lat_p95", source=ts, line_width=2, color="#9467bd", legend_label="95%")
    f_lat.legend.location = "top_left"

    hist_sources = {}
    hist_figs = []
    for name, unit in zip(CELL_PARAMETERS, CELL_UNITS):
        src = ColumnDataSource({"left": [], "right": [], "count": []}, name=f"cellhist-{name}")
        fig = figure(title=f"{name} ({unit})", name=f"cell-{name}", height=200, width=290,
                     tools="save,reset")
        fig.quad(left="left", right="right", bottom=0, top="count", source=src,
                 fill_alpha=0.7)
        hist_sources[name] = src
        hist_figs.append(fig)

    last: list = [None]  # the history already shown

    def update() -> None:
        snap = latest_snapshot(scheduler)
        if not snap:
            return
        state = "finished" if snap.get("finished") else "running"
        header.text = (
            f"<h2>crystream</h2><p>{state}: <b>{snap['processed']}</b> frames written, "
            f"{snap['rate']:.1f} frames/s, hits {snap['hit_rate']:.0%}, indexed "
            f"{snap['indexing_rate']:.0%}, {snap['peaks_per_frame']:.1f} peaks/frame, "
            f"in flight {snap['in_flight']}, dropped {snap['dropped']}, failed "
            f"{snap['failed']}, latency {snap['latency_median'] * 1e3:.0f} ms</p>")
        hist = snap.get("history") or []
        key = (len(hist), hist[-1]["elapsed"] if hist else None)
        if hist and key != last[0]:
            last[0] = key
            ts.data = {"t": [h["elapsed"] for h in hist], "rate": [h["rate"] for h in hist],
                       "hit_rate": [h["hit_rate"] for h in hist],
                       "indexing_rate": [h["indexing_rate"] for h in hist],
                       "peaks": [h["peaks_per_frame"] for h in hist],
                       "in_flight": [h["in_flight"] for h in hist],
                       "dropped": [h["dropped"] for h in hist],
                       "failed": [h["failed"] for h in hist],
                       "lat_med": [h["latency_median"] * 1e3 for h in hist],
                       "lat_p95": [h["latency_p95"] * 1e3 for h in hist]}
        for name, h in snap.get("cell_histograms", {}).items():
            if name in hist_sources and h["counts"]:
                hist_sources[name].data = {"left": h["edges"][:-1], "right": h["edges"][1:],
                                           "count": h["counts"]}

    update()
    doc.add_periodic_callback(update, 500)
    doc.add_root(column(header,
                        gridplot([[f_rate, f_frac], [f_peaks, f_flow], [f_lat, None]]),
                        row(*hist_figs[:3]), row(*hist_figs[3:]), name="crystream-page"))


def register_page() -> None:
    """Add /crystream to distributed's dashboard pages (schedulers started afterwards)."""
    from distributed.dashboard import scheduler as dash
    dash.applications.setdefault(ROUTE, crystream_doc)


def dask_setup(scheduler) -> None:
    """Scheduler preload hook (``--preload flows.dashboard``); the import registers it."""


register_page()
