"""indexamajig's end-of-run summary (and its periodic status line) from a metrics snapshot."""

from __future__ import annotations


def _pct(n: int, d: int) -> float:
    return 100.0 * n / d if d else 0.0


def status_line(snap: dict) -> str:
    """indexamajig's periodic line: images processed, hits, indexable, crystals, rate."""
    n, hits, idx = snap["processed"], snap["hits"], snap["indexed"]
    return (f"{n} images processed, {hits} hits ({_pct(hits, n):.1f}%), {idx} indexable "
            f"({_pct(idx, n):.1f}% of all, {_pct(idx, hits):.1f}% of hits), "
            f"{snap['crystals']} crystals, {snap['rate']:.1f} images/sec.")


def final_summary(snap: dict) -> str:
    """indexamajig's 'Final:' line, then crystream's own counts of what did not make it."""
    n, hits, idx = snap["processed"], snap["hits"], snap["indexed"]
    lines = [f"Final: {n} images processed, {hits} hits ({_pct(hits, n):.1f}%), {idx} indexable "
             f"({_pct(idx, n):.1f}% of all, {_pct(idx, hits):.1f}% of hits), "
             f"{snap['crystals']} crystals."]
    lines.append(f"crystream: {snap['failed']} frames failed, {snap['dropped']} dropped "
                 f"(input faster than processing), {snap['mean_rate']:.1f} frames/s over "
                 f"{snap['elapsed']:.1f} s, latency median {snap['latency_median'] * 1e3:.0f} ms"
                 f" / 95% {snap['latency_p95'] * 1e3:.0f} ms.")
    return "\n".join(lines)
