#!/usr/bin/env python3
"""Polymarket Insights: run the service.

    python run.py                   run the live service
    python run.py --check-config    print the effective settings (secrets masked) and exit
    python run.py --chaos 6         also kill a random actor about 6 times a minute
    python run.py --record F.gz     also record every raw upstream frame to F.gz
    python run.py --replay F.gz --speed 100   run on a recording instead of the live feeds

Settings come from the environment and a ``.env`` file in the working directory (see the
README).  Exit status: 0 after a clean shutdown (SIGINT/SIGTERM), 1 when the root
supervisor gave up, 2 for invalid settings or arguments, 130 when a second signal forced
the exit.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import trio
from loguru import logger

from actors import ServiceOptions, build_service
from actors.alerts import outlets_from_settings
from actors.market_rules import load_custom_rule
from config import ConfigError, Settings, __version__, configure_logging, load_settings
from protocols.recording import RecordingError, RecordingReader
from storage import check_url
from supervision import ChildSpec, SupervisorGaveUp, run_supervisor



def positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {raw!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {raw!r}")
    return value


def non_negative_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {raw!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {raw!r}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run.py",
        description="Polymarket Insights: watches every Polymarket trade, flags whales, forecasts markets "
                    "with an LLM swarm, stores it all and streams it to WebSocket clients.",
        epilog="Settings come from the environment and ./.env; see README.md. "
               "Exit status: 0 clean shutdown, 1 the service gave up, 2 bad settings, 130 forced.",
    )
    parser.add_argument("--version", action="version", version=f"polymarket-insights {__version__}")
    parser.add_argument("--check-config", action="store_true",
                        help="print the effective settings (secrets masked) and exit")
    parser.add_argument("--chaos", metavar="RATE", type=positive_float, default=None,
                        help="chaos mode: kill a random actor about RATE times a minute (tests resilience)")
    parser.add_argument("--seed", type=int, default=None, help="seed for chaos and backoff jitter")
    parser.add_argument("--record", metavar="FILE", type=Path, default=None,
                        help="write every raw upstream frame with its arrival time to FILE (JSON lines; "
                             "gzip when FILE ends in .gz)")
    parser.add_argument("--replay", metavar="FILE", type=Path, default=None,
                        help="run the service on a recorded feed file instead of the live feeds")
    parser.add_argument("--speed", metavar="X", type=non_negative_float, default=1.0,
                        help="replay speed: 1 = as recorded (default), 100 = 100x faster, 0 = as fast as possible")
    parser.add_argument("--exit-when-done", action="store_true",
                        help="with --replay: stop the service once the whole file has been replayed")
    args = parser.parse_args(argv)
    if args.replay is not None and args.record is not None:
        parser.error("--record and --replay cannot be combined")
    if args.exit_when_done and args.replay is None:
        parser.error("--exit-when-done needs --replay")
    return args


def print_settings(settings: Settings) -> None:
    rows = settings.effective()
    width = max(len(name) for name, _, _ in rows)
    for name, shown, doc in rows:
        print(f"{name:<{width}}  {shown}")
        if doc:
            print(f"{'':<{width}}    {doc}")


async def serve(settings: Settings, options: ServiceOptions, *, extra_children: Sequence[ChildSpec] = ()) -> int:
    """Run the tree until a signal; the first SIGINT/SIGTERM stops it in order, a second forces it.

    ``extra_children`` are appended to the root's children (embedding, tests).  Returns the
    process exit status.
    """
    service = build_service(settings, options)
    service.children.extend(extra_children)
    registry = service.registry
    stop = trio.Event()
    exit_code = 0
    async with trio.open_nursery() as nursery:

        async def watch_signals() -> None:
            nonlocal exit_code
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if not stop.is_set():
                        logger.info("received {sig}: shutting down in order (send it again to force)", sig=name)
                        stop.set()
                    else:
                        logger.warning("received {sig} again: forcing exit", sig=name)
                        exit_code = 130
                        nursery.cancel_scope.cancel()

        nursery.start_soon(watch_signals)
        if options.exit_when_done and service.replay_state is not None:
            replay_done = service.replay_state.done

            async def stop_after_replay() -> None:
                await replay_done.wait()
                logger.info("replay done: stopping (--exit-when-done)")
                stop.set()

            nursery.start_soon(stop_after_replay)
        logger.info("polymarket-insights {v} starting", v=__version__)
        try:
            await run_supervisor(service.spec, service.children, registry=registry, rng=service.rng, stop=stop)
            logger.info("stopped cleanly")
        except SupervisorGaveUp as exc:
            logger.opt(exception=exc).critical("the service gave up: {err}", err=str(exc))
            exit_code = 1
        nursery.cancel_scope.cancel()
    return exit_code


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        check_url(settings.database_url)
    except (ValueError, OSError) as exc:   # (ssl.SSLError is an OSError)
        why = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) and exc.filename else str(exc)
        print(f"configuration error: invalid DATABASE_URL: {why}", file=sys.stderr)
        return 2
    try:
        outlets = outlets_from_settings(settings)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        print_settings(settings)
        return 0
    if settings.market_filter_hook:
        try:
            load_custom_rule(settings.market_filter_hook)
        except ValueError as exc:
            print(f"configuration error: invalid MARKET_FILTER_HOOK: {exc}", file=sys.stderr)
            return 2
    if args.replay is not None:
        try:
            check_recording(args.replay)
        except RecordingError as exc:
            print(f"cannot replay: {exc}", file=sys.stderr)
            return 2
    if args.record is not None and not args.record.parent.is_dir():
        print(f"cannot record: directory {args.record.parent} does not exist", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format,
                      [*settings.secrets(), *(secret for outlet in outlets for secret in outlet.secrets())])
    options = ServiceOptions(chaos_per_minute=args.chaos, seed=args.seed, record=args.record, replay=args.replay,
                             speed=args.speed, exit_when_done=args.exit_when_done)
    return trio.run(serve, settings, options)


def check_recording(path: Path) -> None:
    """Fail fast (before starting anything) on a missing or foreign replay file."""
    reader = RecordingReader(path)
    reader.open()
    reader.close()


if __name__ == "__main__":
    sys.exit(main())
