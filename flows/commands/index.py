"""`crystream index`: indexamajig's command line, run as a Dask flow."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from flows.options import OptionError, add_index_options, validate


def _from_namespace(cls, ns: argparse.Namespace, **overrides):
    """An options dataclass filled from the parsed options whose names match its fields."""
    values = {f.name: getattr(ns, f.name) for f in dataclasses.fields(cls)
              if hasattr(ns, f.name)}
    values.update(overrides)
    return cls(**values)


def source_kind(ns: argparse.Namespace) -> str:
    if ns.input:
        return "files"
    if ns.asapo_endpoint:
        return "asapo"
    return "zmq_req" if ns.zmq_request is not None else "zmq_sub"


def build_config(ns: argparse.Namespace, argv: list[str]):
    """The FlowConfig for a validated namespace (OptionError for values a stage refuses)."""
    from crystream.indexing import IndexingOptions
    from crystream.integration import IntegrationOptions
    from crystream.peaks import PeakSearchOptions
    from crystream.pipeline import PipelineConfig
    from flows.config import FlowConfig
    from readers.options import InputOptions

    try:
        inputs = _from_namespace(
            InputOptions, ns, zmq_subscribe=tuple(ns.zmq_subscribe) if ns.zmq_subscribe else None,
            copy_header=tuple(ns.copy_header))
        peaks = _from_namespace(PeakSearchOptions, ns)
        indexing = _from_namespace(IndexingOptions, ns)
        integration = _from_namespace(IntegrationOptions, ns)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    pipeline = PipelineConfig(peaks=peaks, indexing=indexing, integration=integration,
                              fix_divergence=ns.fix_divergence)
    return FlowConfig(
        source=source_kind(ns), geometry=ns.geometry, output=ns.output, input=inputs,
        pipeline=pipeline, cell=ns.pdb, workers=ns.j, scheduler=ns.scheduler,
        jobqueue=ns.jobqueue, dashboard_address=ns.dashboard_address,
        max_in_flight=ns.max_in_flight, command_line=("crystream", "index", *argv),
        indexing_methods=ns.indexing, progress=ns.progress, temp_dir=ns.temp_dir)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "index", help="process frames into a CrystFEL stream (indexamajig's options)",
        description="Process frames from files, ZeroMQ or ASAP::O into a CrystFEL stream. "
                    "Takes indexamajig's options with the same names and defaults.")
    add_index_options(parser)
    parser.set_defaults(run=run)


def check_before_start(config) -> None:
    """Read the geometry and cell once here, so a broken file or an --indexing that cannot
    work with this cell stops the run before any frame, naming the line (OptionError,
    GeometryError, CellError)."""
    from crystream.cellfile import load_cell
    from crystream.geometry.parser import load_geometry
    from crystream.indexing import methods_for

    detector = load_geometry(config.geometry)
    for warning in detector.warnings:
        print(f"crystream index: warning: {warning}", file=sys.stderr)
    target = load_cell(config.cell) if config.cell else None
    if config.pipeline.indexing_on:
        try:
            methods_for(config.pipeline.indexing, target)
        except ValueError as exc:
            raise OptionError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    from flows.run import run_flow
    argv = list(getattr(args, "argv", None) or sys.argv[2:])
    validate(args)
    config = build_config(args, argv)
    check_before_start(config)
    return run_flow(config)
