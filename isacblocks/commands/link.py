"""Command lines of the two-process ISAC link: ``isac tx`` and ``isac rx``.

    isac rx --address tcp://127.0.0.1:5555 &
    isac tx --address tcp://127.0.0.1:5555 --frames 2000

Both take the same ``--seed``, ``--config``, ``--true-spacing`` and ``--no-comm``; the receiver
checks them against the transmitter's ``link_config`` tag.  Either may start first: the
transmitter's PUSH sockets hold the frames until a receiver connects (both print a
"waiting" line meanwhile).  The last frame carries an end-of-stream tag, which ends the
receiver, also through a GNU Radio relay.  The receiver pairs frames across its streams
by (run id, frame index) and scores only complete pairs.

Exit codes: 0 a complete run; 2 a user error (bad option, configuration refused); 3
frames lost; 4 frames of another transmitter run; 5 the sender went silent before its
end of stream (``--idle-timeout``); 6 (tx) no receiver took data for the idle timeout;
130 Ctrl-C.  Ctrl-C (SIGINT) stops either one cleanly: the transmitter stops producing,
waits until the receiver took what is queued (a second Ctrl-C gives up) and sends the end
of stream; the receiver prints its table of what it processed.  Also runnable as
``python -m isacblocks.commands tx|rx`` (the same commands, in this process as it is).

The flowgraphs are `isacblocks.blocks.chains.tx_flowgraph` / `rx_flowgraph`; what the
receiver prints is `link_report`.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import time
import warnings

import numpy as np

from ..blocks.chains import MBML_FORMS, rx_flowgraph, tx_flowgraph, warm_up
from ..blocks.link import (
    EXIT_ERROR,
    EXIT_NO_RECEIVER,
    EXIT_REFUSED,
    LINK_HWM,
    LINK_IDLE_TIMEOUT,
    LINK_STREAMS,
    LinkRefused,
    link_streams,
    link_verdict,
    stream_addresses,
    stream_specs,
)
from ..blocks.ula import true_array
from ..errors import ConfigError, IsacError
from ..experiments.common import run_record
from ..safeio import write_json
from ..zeromq import ItemSizeMismatch, LinkIdleError
from ..zeromq.curve import CurveKeys, is_loopback
from ..zeromq.wire import MAX_MESSAGE_BYTES
from .link_report import final_report, live_line, print_performance
from .memory import available_memory_bytes
from .options import add_spacing_options, assumed_spacing, load_params, output_file
from .runner import Terminated

DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"


# ------------------------------------------------------------------------------------ options
def _shared_options(parser: argparse.ArgumentParser, role: str) -> None:
    parser.add_argument("--address", default=DEFAULT_ADDRESS,
                        help=f"base address; the {len(LINK_STREAMS)} streams ({', '.join(LINK_STREAMS)}) use "
                             "consecutive tcp ports or suffixed ipc/inproc names (default %(default)s)")
    add_spacing_options(parser, assume=True)
    parser.add_argument("--no-comm", dest="with_comm", action="store_false",
                        help="sensing only: no UE channel, no y_c / csi / messages streams")
    parser.add_argument("--max-items", type=_count, default=64,
                        help="frames per work() call (at tx also the most frames per message); each block output "
                             "buffers twice this many (refused when they cannot fit in memory) (default 64)")
    parser.add_argument("--hwm", type=_count, default=LINK_HWM,
                        help="ZeroMQ high-water mark per stream, in messages; refused when that many messages "
                             "cannot fit in memory (default %(default)s)")
    parser.add_argument("--curve", metavar="DIR", default=None,
                        help="authenticate and encrypt every stream with the CURVE keys in DIR (made by `isac keys "
                             "DIR`); give it to both isac tx and isac rx: tx (binding) is the CURVE server, rx the "
                             "client.  Without it the link is open to anyone who can reach the address")
    parser.add_argument("--report-interval", type=float, default=1.0, metavar="S",
                        help="seconds between live status lines; 0 turns them off (default 1)")
    parser.add_argument("--idle-timeout", type=float, default=LINK_IDLE_TIMEOUT, metavar="S",
                        help="give up when the other end took or sent nothing for S seconds once the stream "
                             "has started; 0 waits forever (default %(default)g)")
    parser.add_argument("--perf", action="store_true",
                        help="print the flowgraph's per-block performance counters at the end (work() calls, "
                             "items, seconds inside work(), share of the wall time, output buffer fill); "
                             "--json always holds them")


def _count(text: str) -> int:
    """A whole number, also written as ``1e6``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count: {text!r}") from None
    if not (math.isfinite(value) and value.is_integer()):
        raise argparse.ArgumentTypeError(f"invalid count: {text!r} (a whole number)")
    return int(text) if text.strip().lstrip("+-").isdigit() else int(value)


def tx_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="isac tx")
    parser.set_defaults(link_role="tx")
    parser.description = ("ISAC transmitter and channels: stream the sensing frames Y_r, the symbols and (with "
                          "comm) y_c, CSI and the sent messages over ZeroMQ PUSH sockets, with the ground truth "
                          "as stream tags.  Run `isac rx` with the same --seed/--config to receive them.")
    _shared_options(parser, "transmitter's precoder")
    parser.add_argument("--frames", type=int, default=1000, help="frames to send; 0 streams until Ctrl-C "
                                                                 "(default %(default)s)")
    parser.add_argument("--eta", type=float, default=1.0, help="ISAC trade-off eta of eq. 4 (default 1)")
    parser.add_argument("--phi", type=float, default=0.0, help="ISAC phase phi of eq. 4, rad (default 0)")
    parser.add_argument("--sector", choices=("test", "train"), default="test",
                        help="prior sectors: the test sector, or random training sectors (default test)")
    presence = parser.add_mutually_exclusive_group()
    presence.add_argument("--presence", type=float, default=0.5, help="target presence probability (default 0.5)")
    presence.add_argument("--alternate", action="store_true", help="no target, target, no target, ... "
                                                                   "(as many H0 as H1 frames)")
    parser.add_argument("--linger", type=float, default=None, metavar="S",
                        help="at the end, wait at most S seconds for the receiver to take the queued frames "
                             "(default: the idle timeout; a second Ctrl-C gives up)")
    return parser


def rx_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="isac rx")
    parser.set_defaults(link_role="rx")
    parser.description = ("ISAC receiver: reciprocal filter, MAPRT or MB-ML sensing estimator and metric sinks "
                          "fed by ZeroMQ PULL sockets from `isac tx`; prints live metrics and the final table.")
    _shared_options(parser, "receiver")
    parser.add_argument("--estimator", choices=("maprt", "mbml"), default="maprt",
                        help="sensing receiver: MAPRT baseline or MB-ML (Algorithm 1) (default maprt)")
    parser.add_argument("--mbml-form", choices=MBML_FORMS, default="auto",
                        help="MB-ML map: the fused kernel, the low-rank form, or auto: low-rank for the sectors "
                             "that repeat (the test sector), the same estimates to float32 rounding "
                             "(default %(default)s)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="detection threshold (default: the (1 - Pfa) quantile of the H0 frames received)")
    parser.add_argument("--save-records", metavar="PATH", type=output_file, default=None,
                        help="save the per-frame detection records (statistic, theta_hat, range_hat, "
                             "target_present, theta, range) to this .npy file")
    return parser


def _check_common(args) -> None:
    if args.max_items < 1:
        raise ConfigError(f"--max-items {args.max_items}: must be >= 1")
    if args.hwm < 0:
        raise ConfigError(f"--hwm {args.hwm}: must be >= 0 (0: no limit)")
    if not args.idle_timeout >= 0:
        raise ConfigError(f"--idle-timeout {args.idle_timeout}: must be >= 0 seconds (0: wait forever)")
    _check_curve(args)


def _check_curve(args) -> None:
    """Load the --curve keys of this side (tx binds: the CURVE server) into ``args.curve_keys``,
    or refuse them; without --curve, one warning line when the link leaves this machine."""
    tx = args.link_role == "tx"
    args.curve_keys = None
    if args.curve is not None:
        args.curve_keys = CurveKeys(args.curve)
        args.curve_keys.load(server=tx, owner=f"--curve {args.curve}")
    elif not is_loopback(args.address):
        print(f"isac {args.link_role}: warning: {'binding' if tx else 'connecting to'} {args.address} without "
              "--curve: the link is unauthenticated and unencrypted (anyone who reaches the address can "
              f"{'read' if tx else 'feed'} the streams); make keys with `isac keys DIR` and give --curve DIR to "
              "both isac tx and isac rx", file=sys.stderr, flush=True)


def _check_memory(args, params, flowgraph=None) -> None:
    """Refuse (`ConfigError`, exit 2) a --hwm or --max-items whose memory cannot fit in what is
    available: up to --hwm messages queued per stream (each of up to --max-items frames,
    at most `MAX_MESSAGE_BYTES`) and, once `flowgraph` is built, its buffers (2 x --max-items
    items per block output)."""
    have = available_memory_bytes()
    if have is None:
        return
    specs = stream_specs(params)
    messages = [min(args.max_items * np.dtype(dtype).itemsize * math.prod(shape), MAX_MESSAGE_BYTES)
                for dtype, shape in (specs[name] for name in link_streams(args.with_comm))]
    queues = args.hwm * sum(messages)  # --hwm 0 (no limit) is not estimated
    buffers = 0 if flowgraph is None else \
        sum(2 * flowgraph.max_items * spec.itemsize for block in flowgraph.blocks for spec in block.out_sig)
    if queues + buffers <= have:
        return
    gib = f"{(queues + buffers) / 2**30:.3g} GiB, more than the {have / 2**30:.3g} GiB available"
    if queues >= buffers:
        raise ConfigError(f"argument --hwm: --hwm {args.hwm} queues up to {args.hwm} messages of up to "
                          f"{max(messages) / 2**20:.3g} MiB on each of {len(messages)} streams: that would need "
                          f"{gib}; give a smaller --hwm (default {LINK_HWM})")
    raise ConfigError(f"argument --max-items: --max-items {args.max_items} gives each of the flowgraph's block outputs "
                      f"a buffer of {2 * args.max_items} items: that would need {gib}; give a smaller --max-items "
                      "(default 64)")


# ------------------------------------------------------------------------------------- running
def _setup_process(role: str) -> None:
    """Ctrl-C raises KeyboardInterrupt even when the parent process ignored SIGINT, warnings
    (end of stream not delivered, malformed messages) print as one line, and the ZeroMQ
    blocks' log lines ("waiting for a sender", idle timeouts) go to stdout."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    warnings.formatwarning = lambda message, category, *_args, **_kw: f"{role}: {category.__name__}: {message}\n"
    logger = logging.getLogger("isacblocks.zeromq")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))  # messages start with the block's name
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _run(fg, report, interval: float) -> None:
    """Run `fg` in its thread, calling `report()` every `interval` s (0: never); re-raise a
    block's error."""
    fg.start()
    last = time.monotonic()
    while fg.running:
        time.sleep(0.05)
        if interval and time.monotonic() - last >= interval:
            last = time.monotonic()
            report()
    fg.wait()


#: Seconds between "waiting for a receiver" lines at tx (also with --report-interval 0).
WAITING_INTERVAL = 5.0


def run_tx(args) -> int:
    """``isac tx``: stream the transmitter's frames until --frames are sent (or Ctrl-C); the exit code."""
    _setup_process("tx")
    _check_common(args)
    params = load_params(args)
    _check_memory(args, params)
    ula = true_array(params, args.seed, args.true_spacing)
    spacing = assumed_spacing(args.assume, params, ula)
    if args.frames < 0:
        raise ConfigError(f"--frames {args.frames}: must be >= 0 (0: until Ctrl-C)")
    n_frames = None if args.frames == 0 else args.frames
    if args.linger is not None and not args.linger >= 0:
        raise ConfigError(f"--linger {args.linger}: must be >= 0 seconds")
    linger_s = args.linger if args.linger is not None else args.idle_timeout
    linger = int(linger_s * 1000) if linger_s else -1
    link = tx_flowgraph(params, ula, spacing, n_frames, args.address, seed=args.seed, eta=args.eta, phi=args.phi,
                        with_comm=args.with_comm, sector=args.sector,
                        presence_probability=args.presence, alternate=args.alternate,
                        max_items=args.max_items, hwm=args.hwm, linger=linger, idle_timeout=args.idle_timeout,
                        curve=args.curve_keys)
    _check_memory(args, params, link.flowgraph)
    y_r = link.sinks["Y_r"]
    for name, endpoint in link.endpoints.items():
        print(f"tx: {name:8s} -> {endpoint}")
    print(f"tx: run {link.run_id}: sending {args.frames or 'endless'} frames (seed {args.seed}); waiting for a "
          "receiver ...", flush=True)
    start, cpu_start = time.monotonic(), time.process_time()
    last_line = [start]

    def report() -> None:
        now = time.monotonic()
        elapsed = now - start
        if y_r.items_sent == 0:
            if now - last_line[0] >= WAITING_INTERVAL:
                last_line[0] = now
                print(f"tx: waiting for a receiver on {y_r.endpoint} ({elapsed:.0f} s so far)", flush=True)
            return
        if not args.report_interval:
            return
        mbytes = sum(s.bytes_sent for s in link.sinks.values()) / 1e6
        print(f"tx: {y_r.items_sent} frames sent, {y_r.items_sent / elapsed:.1f} frames/s, "
              f"{mbytes / elapsed:.1f} MB/s, {y_r.peers} receiver(s) connected", flush=True)

    code = 0
    try:
        _run(link.flowgraph, report, args.report_interval or 1.0)
    except LinkIdleError as exc:
        code = EXIT_NO_RECEIVER
        print(f"tx: error: {exc}", file=sys.stderr, flush=True)
        for sink in link.sinks.values():
            sink.abort()
    except KeyboardInterrupt:
        code = 130
        print("\ntx: interrupted; sending the queued frames and the end of stream (Ctrl-C again to give up)",
              flush=True)
        try:
            if y_r.peers:  # every frame made reaches every stream before the end of stream
                link.flowgraph.drain(timeout=None)
            else:  # no receiver to drain into: the sinks' stop() says so and gives up
                link.flowgraph.stop(timeout=None)
        except KeyboardInterrupt:
            for sink in link.sinks.values():
                sink.abort()
            link.flowgraph.stop(timeout=5.0)
    elapsed = time.monotonic() - start
    mbytes = sum(s.bytes_sent for s in link.sinks.values()) / 1e6
    eos = all(s.eos_sent for s in link.sinks.values())
    print(f"tx: sent {y_r.items_sent} frames ({mbytes:.1f} MB) in {elapsed:.1f} s; end of stream "
          f"{'sent' if eos else 'NOT sent'}", flush=True)
    print_performance(args, link.flowgraph, "tx")
    if args.json:
        write_json(args.json, {**run_record(args, params, ula), "role": "tx", "run_id": link.run_id,
                               "frames": y_r.items_sent, "exit_code": code, "complete": code == 0,
                               "wall_s": elapsed, "cpu_s": time.process_time() - cpu_start,
                               "interrupted": code == 130, "performance": link.flowgraph.performance(),
                               "streams": {name: s.stats() for name, s in link.sinks.items()}})
    return code


def run_rx(args) -> int:
    """``isac rx``: receive, score and judge one transmitter run; the exit code (`link_verdict`)."""
    _setup_process("rx")
    _check_common(args)
    params = load_params(args)
    _check_memory(args, params)
    ula = true_array(params, args.seed, args.true_spacing)
    spacing = assumed_spacing(args.assume, params, ula)
    expect = {"true_spacing": ula.spacing} if args.assume == "known" else {}
    link = rx_flowgraph(params, spacing, args.address, with_comm=args.with_comm, estimator=args.estimator,
                        threshold=args.threshold, max_items=args.max_items, hwm=args.hwm, expect=expect,
                        idle_timeout=args.idle_timeout, waiting_interval=WAITING_INTERVAL, mbml_form=args.mbml_form,
                        curve=args.curve_keys)
    _check_memory(args, params, link.flowgraph)
    warm_up(link.estimator, params)
    for name, endpoint in stream_addresses(args.address, link.sources).items():
        print(f"rx: {name:8s} <- {endpoint}")
    print(f"rx: {args.estimator.upper()} receiver assuming the {args.assume} spacing; waiting for frames ...",
          flush=True)
    start, cpu_start = time.monotonic(), time.process_time()
    ended_by = None
    try:
        _run(link.flowgraph, lambda: print(live_line(link, params), flush=True), args.report_interval)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: stop, then report what was received
        ended_by = (143, "terminated (SIGTERM)") if isinstance(exc, Terminated) else (130, "interrupted (Ctrl-C)")
        print(f"\nrx: {ended_by[1].split(' (')[0]}", flush=True)
        _stop(link.flowgraph, 60.0)
    except Exception as exc:  # noqa: BLE001 - a block raised: the run ends, what was received is reported
        ended_by = _ended_by_error(exc)
        print(f"rx: error: {ended_by[1]}", file=sys.stderr, flush=True)
        _stop(link.flowgraph, 5.0)
    elapsed, cpu = time.monotonic() - start, time.process_time() - cpu_start
    verdict = link_verdict(link, ended_by)
    code = verdict.exit_code
    final_report(link, params, args, ula, elapsed, verdict, code, cpu)
    return code


def _ended_by_error(exc: Exception) -> tuple[int, str]:
    """``(exit code, reason)`` of a run a block's exception ended: `EXIT_REFUSED` when the
    transmitter's configuration or item size was refused (a user error), else `EXIT_ERROR`."""
    cause = exc.__cause__ if isinstance(exc.__cause__, IsacError) else exc
    if isinstance(cause, (LinkRefused, ItemSizeMismatch)):
        return EXIT_REFUSED, f"refused: {cause}"
    return EXIT_ERROR, f"stopped by an error: {type(exc).__name__}: {exc}"


def _stop(flowgraph, timeout: float) -> None:
    """Stop `flowgraph` (a second Ctrl-C or a stuck block gives up waiting)."""
    try:
        flowgraph.stop(timeout=timeout)
    except (KeyboardInterrupt, IsacError):
        pass


# ------------------------------------------------------------------------------------- entry
def register(sub) -> None:
    tx_parser(sub.add_parser("tx", help="ISAC transmitter + channels streaming over ZeroMQ")).set_defaults(run=run_tx)
    rx_parser(sub.add_parser("rx", help="ISAC receiver + metrics fed over ZeroMQ")).set_defaults(run=run_rx)
