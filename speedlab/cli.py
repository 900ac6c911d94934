"""The ``speedlab`` command: parse arguments, call one library function, print the answer.

No logic lives here. Each subcommand is a pair: ``_add_NAME(subparsers, common)`` declares its
arguments, ``_run_NAME(args, config)`` calls the library and prints; :data:`COMMANDS` lists
them. Every speedlab error becomes one line on stderr and exit status 1 (2 for bad usage).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .adapter import error_exit_code, exit_code, render, warnings
from .config import Config, load_config
from .errors import SpeedlabError, TransferError
from .layout import printable
from .masking import mask_secrets
from .text import entry_blocks


def _print_json(data) -> None:
    print(render(data, as_json=True))


def _show(args, report) -> int:
    """Print a report as JSON (``--json``) or as text (and its warnings on stderr); its exit status."""
    print(render(report, args.json))
    if not args.json:
        for line in warnings(report):
            print(line, file=sys.stderr)
    return exit_code(report)


# --------------------------------------------------------------------------- config
def _add_config(sub, common) -> None:
    parser = sub.add_parser("config", parents=[common], help="show the resolved configuration",
                            description="Show the configuration speedlab resolved from defaults, "
                                        "speedlab.toml, SPEEDLAB_* variables and flags (secrets masked).")
    parser.add_argument("action", choices=["show"], help="'show': print it as JSON")


def _run_config(args, config: Config) -> int:
    _print_json(config.show())
    return 0


# --------------------------------------------------------------------------- infra
def _add_infra(sub, common) -> None:
    parser = sub.add_parser("infra", parents=[common], help="create buckets, lifecycle rules, IAM policies",
                            description="plan: show what differs between the store and [infra]/[buckets]; "
                                        "apply: create missing buckets, set lifecycle rules and versioning "
                                        "(idempotent); iam-policy: print a least-privilege IAM policy.")
    parser.add_argument("action", choices=["plan", "apply", "iam-policy"])
    parser.add_argument("--role", choices=["collector", "aggregator", "dashboard", "operator", "infra"],
                        default="collector", help="iam-policy: whose policy (default collector)")
    parser.add_argument("--host", dest="policy_host", metavar="HOST_ID",
                        help="iam-policy --role collector: the host the policy is for")
    parser.add_argument("--json", action="store_true", help="plan/apply: print JSON")


def _run_infra(args, config: Config) -> int:
    from . import infra
    if args.action == "iam-policy":
        print(infra.iam_policy_json(args.role, config.buckets, args.policy_host))
        return 0
    if args.action == "plan":
        result = infra.plan_infra(config)
    else:
        from .joblog import JobLog
        store = config.open_store(create=True)  # apply makes the store: a missing local folder too
        result = infra.apply_infra(config, store, log=JobLog.for_config(config, "infra", echo=True))
    return _show(args, result)


# --------------------------------------------------------------------------- health
def _add_health(sub, common) -> None:
    parser = sub.add_parser("health", parents=[common], help="check hosts, summaries and runs; alert",
                            description="Check that every host reports, every tier's summaries are on "
                                        "schedule, scheduled runs succeed and results meet the plan; send "
                                        "debounced alerts ([alerts]). Exit 0 healthy, 1 unhealthy, 2 the "
                                        "check could not run.")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-alerts", action="store_true",
                        help="only report: send nothing and leave incident state unchanged")


def _run_health(args, config: Config) -> int:
    from .adapter import check_health
    return _show(args, check_health(config, send_alerts=not args.no_alerts))


# --------------------------------------------------------------------------- operator tools
def _one_line_usage_errors(parser):
    """Usage mistakes (``--last abc``) as one line and exit 2, instead of the usage text."""
    def error(message):
        parser.exit(2, f"{parser.prog}: error: {message}\n")
    parser.error = error
    return parser


def _non_empty(text: str) -> str:
    """An option's value that must say something: ``--period ''`` or ``--host ''`` is a usage
    error, not the default (it rolled up yesterday, or meant every host)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty value is not allowed: give one, or leave the "
                                         "option out for its default")
    return text


def _add_host_json(parser, host_help: str) -> None:
    parser.add_argument("--host", type=_non_empty, metavar="HOST_ID", help=host_help)
    parser.add_argument("--json", action="store_true", help="print JSON (for programs)")


def _add_latest(sub, common) -> None:
    parser = _one_line_usage_errors(sub.add_parser(
        "latest", parents=[common], help="the newest results or summaries of any tier",
        description="Show the newest entries of one tier, newest first (listings are never cached)."))
    parser.add_argument("--period", type=_non_empty, default="latest", metavar="PERIOD",
                        help="latest (each host's newest result; default), minutes (newest raw "
                             "results), hourly, daily, weekly, monthly or yearly (summaries)")
    parser.add_argument("--last", type=int, metavar="N",
                        help="how many entries (per host for 'latest'; default 1, else 10)")
    _add_host_json(parser, "one host (summaries: that host's own instead of all hosts')")


def _run_latest(args, config: Config) -> int:
    from . import latest
    return _show(args, latest.latest(config, args.period, args.last, args.host))


def _add_coverage(sub, common) -> None:
    parser = _one_line_usage_errors(sub.add_parser(
        "coverage", parents=[common], help="hour-by-hour test coverage of one day",
        description="For one day in the configured time zone, per host and hour: expected slots, "
                    "successful and failed tests, missing minutes, duplicates."))
    parser.add_argument("--date", type=_non_empty, default="yesterday", metavar="YYYY-MM-DD",
                        help="the day (or 'today', 'yesterday'; default yesterday)")
    _add_host_json(parser, "one host (default: every host with results)")


def _run_coverage(args, config: Config) -> int:
    from . import coverage
    return _show(args, coverage.coverage(config, args.date, args.host))


def _add_dedupe(sub, common) -> None:
    parser = _one_line_usage_errors(sub.add_parser(
        "dedupe", parents=[common], help="find (and with --delete remove) duplicate results",
        description="Find slots holding more than one result and summary folders with stray "
                    "objects; keep the earliest complete result. Dry run unless --delete."))
    parser.add_argument("--period", type=_non_empty, default="all", metavar="PERIOD",
                        help="all (default), raw, hourly, daily, weekly, monthly or yearly")
    parser.add_argument("--delete", action="store_true",
                        help="delete the extras and mark the affected summaries stale")
    _add_host_json(parser, "one host's slots and summaries (default: all)")


def _run_dedupe(args, config: Config) -> int:
    from . import dedupe
    return _show(args, dedupe.dedupe(config, args.period, args.host, delete=args.delete))


def _add_logs(sub, common) -> None:
    parser = _one_line_usage_errors(sub.add_parser(
        "logs", parents=[common], help="merge, filter and follow the job logs",
        description="Show the job logs (JSON lines beside the store), merged by time, coloured "
                    "by level, start/end lines hidden; follow new lines."))
    parser.add_argument("--job", type=_non_empty, default="all", metavar="JOB",
                        help="collector, aggregator, dashboard, dedupe, ... or all (default)")
    parser.add_argument("--since", type=_non_empty, default="1h", metavar="AGE",
                        help="how far back: 30m, 1h (default), 2d, or an ISO time")
    parser.add_argument("--follow", action=argparse.BooleanOptionalAction, default=None,
                        help="keep printing new lines (default: follow on a terminal only)")
    parser.add_argument("--level", type=_non_empty, default="info", metavar="LEVEL",
                        help="lowest level shown: debug, info (default), warning, error")
    parser.add_argument("--events", action="store_true", help="also show run start/end lines")
    parser.add_argument("--color", type=_non_empty, default="auto", metavar="WHEN",
                        help="auto (default: only on a terminal), always or never")
    parser.add_argument("--poll", type=_poll_seconds, default=0.5, metavar="SECONDS",
                        help="--follow: how often to look for new lines (default 0.5; at most 3600)")
    parser.add_argument("--json", action="store_true", help="print the JSON lines (for programs)")


def _poll_seconds(text: str) -> float:
    """``--poll``: seconds above 0 (``-1`` crashed ``time.sleep`` with a traceback)."""
    from .logview import LogError, check_poll
    try:
        return check_poll(float(text))
    except (ValueError, LogError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0 and at most "
                                         "3600") from None


def _run_logs(args, config: Config) -> int:
    from . import logview
    follow = sys.stdout.isatty() if args.follow is None else args.follow
    colour = logview.use_colour(args.color, sys.stdout)
    shown = 0
    for item in logview.stream_logs(config, args.job, args.since, args.level, args.events,
                                    follow, args.poll):
        if isinstance(item, logview.BadLine):
            print(item, file=sys.stderr, flush=True)
            continue
        shown += 1
        print(json.dumps(item.to_dict(), default=str) if args.json
              else logview.format_line(item, colour, config.timezone), flush=True)
    if not shown and not args.json:
        which = "" if args.job == "all" else f" from {args.job}"
        print(f"no log lines{which} since {args.since} in {logview.log_dir(config)}", file=sys.stderr)
    return 0


def _add_tables(sub, common) -> None:
    parser = _one_line_usage_errors(sub.add_parser(
        "tables", parents=[common], help="rebuild or check the Parquet tables beside the original layout",
        description="rebuild: make every table partition again from the original layout (one JSON "
                    "object per result and per summary, the source of truth); safe beside running "
                    "jobs. check: read every source object and compare it with its table row; exit 0 "
                    "when they agree, 1 when any disagrees (each one listed). Bad source objects get "
                    "no row and are listed as skipped in both. See docs/tables.md."))
    parser.add_argument("action", choices=["rebuild", "check"])
    parser.add_argument("--tier", dest="tiers", action="append", metavar="TIER",
                        choices=["hourly", "daily", "weekly", "monthly", "yearly", "raw"],
                        help="only this table: hourly, daily, weekly, monthly, yearly or raw "
                             "(repeatable; default all)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _run_tables(args, config: Config) -> int:
    from . import tables_io
    run = tables_io.rebuild if args.action == "rebuild" else tables_io.check
    return _show(args, run(config.open_store(), config.buckets, tiers=args.tiers))


# --------------------------------------------------------------------------- import, export
def _add_import(sub, common) -> None:
    from .importers import FORMATS
    parser = sub.add_parser("import", parents=[common], help="store another tracker's history in its slots",
                            description="Store FILE's results in their 15-minute slots through the collector's "
                                        "writer, never over a stored one (importing twice adds nothing); list skipped "
                                        "lines with why; mark touched hours for run-due. Exit 1 when a line was "
                                        "invalid or a write failed. See docs/import-export.md.")
    parser.add_argument("file", metavar="FILE", help="the file to import")
    parser.add_argument("--format", dest="import_format", required=True, choices=list(FORMATS),
                        help="the file's format")
    _add_host_json(parser, "whose results these are (required, except for --format speedlab)")


def _run_import(args, config: Config) -> int:
    from .importing import import_file
    return _show(args, import_file(config, args.file, args.import_format, args.host))


def _add_export(sub, common) -> None:
    parser = sub.add_parser("export", parents=[common], help="a view or raw results as CSV, JSON lines or Parquet",
                            description="Write a view (the rows of 'speedlab query') or raw results (--raw) as "
                                        "CSV, JSON lines or Parquet to --output or stdout. A raw export imports "
                                        "back with 'speedlab import FILE --format speedlab'.")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--mode", choices=["minute", "hourly", "daily", "weekly", "monthly", "yearly"],
                      help="the view (default daily), as in 'speedlab query'")
    what.add_argument("--raw", type=_non_empty, nargs=2, metavar=("FROM", "TO"),
                      help="raw results whose slots lie in the days FROM to TO (YYYY-MM-DD, inclusive)")
    parser.add_argument("--days", type=int, default=None, metavar="N", help="the view's periods (as in query)")
    parser.add_argument("--now", type=_non_empty, default=None, metavar="ISO8601", help="the view's moment")
    parser.add_argument("--format", dest="export_format", choices=["csv", "jsonl", "parquet"], help="default: suffix")
    parser.add_argument("--output", "-o", type=_non_empty, default=None, metavar="PATH",
                        help="the file to write (default: stdout; not for Parquet)")
    _add_host_json(parser, "one host (default: all); --json prints the report (with --output)")


def _run_export(args, config: Config) -> int:
    from . import export
    from .rowbuild import DEFAULT_DAYS, parse_now
    if args.raw and (args.days is not None or args.now is not None):
        raise TransferError("--days and --now choose a view's periods; --raw takes its days as FROM TO")
    (first, last), mode = args.raw or ("", ""), args.mode or "daily"
    options = dict(fmt=args.export_format, output=args.output)
    report = (export.export_raw(config, first, last, args.host, **options) if args.raw else export.export_view(
        config, mode, DEFAULT_DAYS[mode] if args.days is None else args.days, args.host or "all",
        now=parse_now(args.now), **options))
    if args.output is not None:
        return _show(args, report)
    sys.stdout.write(report.data.decode("utf-8"))
    print(*warnings(report), sep="\n", file=sys.stderr, end="\n" if warnings(report) else "")
    return exit_code(report)


# --------------------------------------------------------------------------- collect, schedule
def _add_collect(sub, common) -> None:
    parser = sub.add_parser("collect", parents=[common], help="run one speed test and store it in its slot",
                            description="Run one speed test (--engine) and store it in this host's 15-minute slot, "
                                        "exactly once; keep it in the local spool while the store is unreachable. "
                                        "Exit 0 also when the slot was filled; 1 when the store refused this "
                                        "result, or (--flush) when spool entries were set aside.")
    parser.add_argument("--host-id", type=_non_empty, help="host id (default: [host_id], $SPEEDLAB_HOST_ID, hostname)")
    parser.add_argument("--engine", metavar="NAME", help="speedtest-cli, ookla (Ookla's CLI on PATH) or librespeed "
                                                         "([collector] librespeed_url) (default: [collector] engine)")
    parser.add_argument("--secure", action=argparse.BooleanOptionalAction, default=None,
                        help="HTTPS to speedtest.net (default: [collector] secure, else off)")
    parser.add_argument("--server", dest="servers", type=int, action="append", metavar="ID",
                        help="test only against this speedtest.net server id (repeatable; ookla takes one)")
    parser.add_argument("--flush", action="store_true", help="upload the spool without testing")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")


def _run_collect(args, config: Config) -> int:
    from . import collect
    if args.flush:
        return _show(args, collect.flush_spool(config))
    return _show(args, collect.collect_once(config, secure=args.secure, servers=args.servers, engine_name=args.engine))


def _add_schedule(sub, common) -> None:
    parser = sub.add_parser("schedule", parents=[common], help="print or install the every-15-minutes collector entry",
                            description="Print the scheduler entries that run 'speedlab collect' every 15 "
                                        "minutes (crontab line, systemd service + timer, Windows Task "
                                        "Scheduler XML and schtasks line); --install adds them here.")
    parser.add_argument("--platform", choices=["cron", "systemd", "windows", "all"], default="all",
                        help="which scheduler (default all; with --install: this machine's)")
    parser.add_argument("--install", action="store_true", help="install the entry (crontab, systemctl, schtasks)")
    parser.add_argument("--offset-minutes", type=int, default=None, metavar="M",
                        help="start M minutes into each slot, 0-14 (default: [collector] "
                             "start_offset_minutes, else 2-10 chosen from the host id)")
    parser.add_argument("--json", action="store_true", help="print the entries as JSON")


def _run_schedule(args, config: Config) -> int:
    from .os_entries import schedule_collector
    result = schedule_collector(config, platform=args.platform, offset_minutes=args.offset_minutes,
                                install=args.install)
    if args.json:
        _print_json(result)
        return 0
    names = {"cron": "crontab line (crontab -e)", "systemd_service": "systemd: speedlab-collect.service",
             "systemd_timer": "systemd: speedlab-collect.timer",
             "windows_task_xml": "Windows: speedlab-collect.xml "
                                 "(schtasks /Create /TN speedlab-collect /XML speedlab-collect.xml)",
             "schtasks": "Windows: one-line alternative (cannot set StartWhenAvailable)"}
    if not args.install:
        print(entry_blocks(result["entries"], names), end="")
    for line in result["installed"]:
        print(line)
    return 0


# --------------------------------------------------------------------------- dashboard
def _add_query(sub, common) -> None:
    parser = sub.add_parser("query", parents=[common], help="the dashboard's rows as JSON",
                            description="Print the rows the dashboard shows (oldest first) as JSON: "
                                        "one per period, periods without data as null values with a status.")
    parser.add_argument("--mode", default="daily",
                        choices=["minute", "hourly", "daily", "weekly", "monthly", "yearly"],
                        help="minute (raw 15-min results) or a summary tier (default daily)")
    parser.add_argument("--days", type=int, default=None, metavar="N",
                        help="how many days (minute/hourly/daily), weeks, months or years, ending "
                             "with the current one (default: the dashboard's default for the mode)")
    parser.add_argument("--host", type=_non_empty, default="all", metavar="HOST_ID",
                        help="one host, or 'all' (default)")
    parser.add_argument("--now", type=_non_empty, default=None, metavar="ISO8601",
                        help="pretend it is this moment (e.g. 2026-03-15T10:20:00+05:30)")


def _run_query(args, config: Config) -> int:
    from .query import rows
    from .rowbuild import DEFAULT_DAYS, parse_now
    days = args.days if args.days is not None else DEFAULT_DAYS[args.mode]
    _print_json(rows(args.mode, days, args.host, config=config, now=parse_now(args.now)))
    return 0


def _port(text: str) -> int:
    """A TCP port for ``--port`` (a usage error, not a socket traceback, when out of range)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port: use a number from 1 to 65535")
    return port


def _add_dashboard(sub, common) -> None:
    parser = sub.add_parser("dashboard", parents=[common], help="serve the dashboard with Voila on 127.0.0.1",
                            description="Serve notebooks/dashboard.ipynb with Voila on 127.0.0.1 against "
                                        "the configured store (--store works). Stop with Ctrl+C.")
    parser.add_argument("--port", type=_port, default=8866, help="TCP port (default 8866)")
    parser.add_argument("--now", type=_non_empty, default=None, metavar="ISO8601",
                        help="pin the dashboard's clock to this moment (to look at the past)")
    parser.add_argument("--cull-idle", type=int, default=600, metavar="SECONDS",
                        help="stop a page's kernel after this long idle (default 600)")
    parser.add_argument("--api", action="store_true",
                        help="also serve the HTTP JSON API under /api/ (token: [api] token; see speedlab/api.py)")


def _run_dashboard(args, config: Config) -> int:
    from .serve import serve
    code = serve(config, args.port, now=args.now, cull_idle_s=args.cull_idle, api=args.api,
                 announce=lambda url: print(f"speedlab dashboard: {url} (store "
                                            f"{mask_secrets(config.store, config.secrets)}; Ctrl+C stops)",
                                            flush=True))
    print("speedlab dashboard: stopped", flush=True)
    return code


# --------------------------------------------------------------------------- aggregation
def _moment(text: str):
    from .errors import UnsupportedDate
    from .periods import parse_timestamp
    try:
        return parse_timestamp(text)
    except UnsupportedDate as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time with an offset "
                                         f"(e.g. 2026-01-07T08:00:00+05:30): {exc}") from None


def _add_aggregate(sub, common) -> None:
    parser = sub.add_parser("aggregate", parents=[common], help="roll up one period, or backfill a range",
                            description="Roll up one period (all hosts and each host) and print the "
                                        "response {\"message\", \"mode\", \"result\"} as JSON; "
                                        "or, with --backfill FROM TO, every period of every tier in a range.")
    parser.add_argument("--mode", choices=["hourly", "daily", "weekly", "monthly", "yearly"],
                        help="the tier to roll up (required unless --backfill)")
    parser.add_argument("--period", type=_non_empty, default=None, metavar="LABEL",
                        help="2025122914, 2025-12-29, 2025W44, 2025-12 or 2025 (default: the "
                             "previous complete period)")
    parser.add_argument("--host", type=_non_empty, default=None, metavar="HOST_ID",
                        help="print this host's summary instead of the all-hosts one")
    parser.add_argument("--via-notebook", action="store_true", help="run scheduled/rollup.ipynb through "
                        "papermill and keep the executed notebook as the run's record")
    parser.add_argument("--backfill", type=_non_empty, nargs=2, metavar=("FROM", "TO"), default=None,
                        help="roll up every period from FROM to TO (dates, months, years...)")
    parser.add_argument("--now", type=_moment, default=None, metavar="ISO8601", help="act as if it were this moment")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (--backfill)")
    parser.add_argument("--recompute", action="store_true", help="--backfill: roll up every period, also those "
                        "whose inputs are unchanged since a backfill settled them (kept as stored by default)")


def _run_aggregate(args, config: Config) -> int:
    from .adapter import aggregate_command
    _print_json(aggregate_command(config, args.mode, args.period, args.host, via_notebook=args.via_notebook,
                                  backfill_range=args.backfill, now=args.now, progress=not args.no_progress,
                                  recompute=args.recompute))
    return 0


def _add_scheduler(sub, common) -> None:
    parser = sub.add_parser("scheduler", parents=[common], help="roll up what is due; print its cron/systemd entries",
                            description="run-due: roll up every summary that is due and missing, "
                                        "stale (late data) or marked stale, finest tier first. print: "
                                        "the cron line, systemd service + timer and Windows task that "
                                        "call run-due every few minutes.")
    parser.add_argument("action", choices=["run-due", "print"])
    parser.add_argument("--now", type=_moment, default=None, metavar="ISO8601",
                        help="run-due: act as if it were this moment")
    parser.add_argument("--via-notebook", action="store_true",
                        help="run-due: run scheduled/run_due.ipynb through papermill (kept as the record)")
    parser.add_argument("--every-minutes", type=int, default=5, metavar="N",
                        help="print: call run-due every N minutes (default 5)")
    parser.add_argument("--offset-minutes", type=int, default=1, metavar="M",
                        help="print: M minutes into each period (default 1: :01, :06, :11...)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _run_scheduler(args, config: Config) -> int:
    if args.action == "print":
        from .os_entries import run_due_entries
        result = run_due_entries(config, args.every_minutes, args.offset_minutes)
        if args.json:
            _print_json(result)
        else:
            print(entry_blocks(result["entries"]), end="")
        return 0
    from .adapter import run_due_command
    return _show(args, run_due_command(config, args.now, via_notebook=args.via_notebook))


# --------------------------------------------------------------------------- up, demo
def _add_up(sub, common) -> None:
    parser = sub.add_parser("up", parents=[common], help="collect, roll up and serve the dashboard on this machine",
                            description="Everything on one machine until Ctrl+C: a speed test every 15 "
                                        "minutes into the (local) store, the rollups when they are due, and "
                                        "the dashboard (and HTTP API) on 127.0.0.1. Restarting loses and "
                                        "duplicates nothing.")
    parser.add_argument("--port", type=_port, default=8866, help="dashboard port (default 8866)")
    parser.add_argument("--no-api", action="store_true", help="serve the dashboard without the HTTP API")
    parser.add_argument("--no-serve", action="store_true", help="collect and roll up only, no dashboard")
    parser.add_argument("--interval-seconds", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--start", type=_moment, default=None, help=argparse.SUPPRESS)


def _run_up(args, config: Config) -> int:
    from .up import up
    up(config, port=args.port, serve=not args.no_serve, api=not args.no_api,
       interval_s=args.interval_seconds, start=args.start, echo=lambda line: print(line, flush=True))
    return 0


def _add_demo(sub, common) -> None:
    parser = sub.add_parser("demo", parents=[common],
                            help="sample history in a separate demo store, rolled up and served",
                            description="Fill a separate demo store (default ./speedlab-demo, --store PATH) "
                                        "with generated, clearly labelled DEMO DATA for three hosts, roll it up "
                                        "through papermill and serve the dashboard on it. Needs no internet.")
    parser.add_argument("--days", type=int, default=90, help="days of history (default 90)")
    parser.add_argument("--seed", type=int, default=2025, help="random seed: same seed, same data (default 2025)")
    parser.add_argument("--no-serve", action="store_true", help="fill and roll up only")
    parser.add_argument("--port", type=_port, default=8866, help="dashboard port (default 8866)")
    parser.add_argument("--now", type=_moment, default=None, help=argparse.SUPPRESS)


def _run_demo(args, config: Config) -> int:
    from .demo import DEFAULT_STORE, run_demo
    report = run_demo(getattr(args, "store", None) or DEFAULT_STORE, days=args.days, seed=args.seed,
                      now=args.now, tz=config.timezone, serve=not args.no_serve, port=args.port,
                      echo=lambda line: print(line, flush=True))
    return 1 if report.written.rejected or report.written.failed else 0


#: subcommand name -> (declare arguments, run). Order is the order of ``--help``.
COMMANDS: dict[str, tuple[Callable, Callable]] = {
    "config": (_add_config, _run_config),
    "collect": (_add_collect, _run_collect),
    "schedule": (_add_schedule, _run_schedule),
    "infra": (_add_infra, _run_infra),
    "health": (_add_health, _run_health),
    "latest": (_add_latest, _run_latest),
    "coverage": (_add_coverage, _run_coverage),
    "dedupe": (_add_dedupe, _run_dedupe),
    "logs": (_add_logs, _run_logs),
    "tables": (_add_tables, _run_tables),
    "import": (_add_import, _run_import),
    "export": (_add_export, _run_export),
    "query": (_add_query, _run_query),
    "dashboard": (_add_dashboard, _run_dashboard),
    "aggregate": (_add_aggregate, _run_aggregate),
    "scheduler": (_add_scheduler, _run_scheduler),
    "up": (_add_up, _run_up),
    "demo": (_add_demo, _run_demo),
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (used by :func:`main` and by tests of ``--help``)."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("--store", type=_non_empty, default=argparse.SUPPRESS,
                       help="where data lives: a folder, file:///path or s3:// "
                            "(default: $SPEEDLAB_STORE, speedlab.toml, ./speedlab-data)")
    group.add_argument("--config", type=_non_empty, default=argparse.SUPPRESS, metavar="FILE",
                       help="speedlab.toml to read (default: $SPEEDLAB_CONFIG, ./speedlab.toml)")
    group.add_argument("--timezone", type=_non_empty, default=argparse.SUPPRESS, metavar="ZONE",
                       help="IANA time zone for slots and periods (default Asia/Kolkata)")
    parser = argparse.ArgumentParser(
        prog="speedlab", parents=[common],
        description="Measure your internet speed on every host, roll results up into hourly, "
                    "daily, weekly, monthly and yearly summaries, and look at them.")
    parser.add_argument("--version", action="version", version=f"speedlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add, _ in COMMANDS.values():
        add(sub, common)
    for command in sub.choices.values():  # every usage mistake: one line, exit 2
        _one_line_usage_errors(command)
    return _one_line_usage_errors(parser)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    config = None
    try:
        config = load_config(getattr(args, "config", None), store=getattr(args, "store", None),
                             timezone=getattr(args, "timezone", None),
                             host_id=getattr(args, "host_id", None) if args.command == "collect" else None)
        return COMMANDS[args.command][1](args, config) or 0
    except SpeedlabError as exc:  # masked: a message may quote a store URL or a webhook
        print(f"speedlab {args.command}: error: "
              f"{printable(mask_secrets(str(exc), config.secrets if config else ()))}", file=sys.stderr)
        return error_exit_code(args.command)
    except KeyboardInterrupt:
        print(f"speedlab {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `speedlab logs | head` closed the pipe: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
