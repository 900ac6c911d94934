"""Garbage at random keys of a built store: no tool crashes, each bad object is reported once
with its reason, and every period the garbage does not touch keeps its figures exactly.

A good store (2 hosts x 2 days of 15-minute results, with gaps) is built and rolled up once;
each example copies it, writes a few garbage objects (non-objects, wrong types, huge and
negative numbers, truncated JSON, non-UTF-8 bytes, results and summaries dated 2099, odd key
names, folders named like objects, odd stale markers) with the store's ``put``, and then runs
what the commands run: ``run_due`` (``scheduler run-due``), ``query.rows`` (``query``, the
dashboard), ``coverage``, ``latest``, ``dedupe`` (dry run) and ``run_health`` (``health``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from speedlab import layout, query, rowbuild
from speedlab.config import load_config
from speedlab.coverage import coverage
from speedlab.dedupe import dedupe
from speedlab.errors import InvalidRecord, LayoutError, ObjectNotFound
from speedlab.health import run_health
from speedlab.latest import latest
from speedlab.periods import TIERS, Period, parse_period, period_of
from speedlab.reader import fetch_many
from speedlab.records import TierSummary
from speedlab.rollup import run_due
from speedlab.scheduler import due_at, is_due
from speedlab.store import LocalStore
from speedlab.store_s3 import S3Store
from tests.helpers.data import IST, B, put, result

HOSTS = ("home-primary", "office-main")
DAYS = ("2025-12-27", "2025-12-28")  # Saturday and Sunday of ISO week 2025W52
GARBAGE_DAYS = DAYS + ("2025-12-29",)  # the day after the data: empty summaries only
NOW = datetime(2026, 1, 1, 3, 0, tzinfo=IST)  # 2025W52, December and 2025 are due
QUERY_DAYS = {"minute": 6, "hourly": 6, "daily": 6, "weekly": 2, "monthly": 2, "yearly": 2}
PROVENANCE = ("generated_at", "source_objects", "source_max_modified")
FUTURE_RAW = "year=2099/month=209901/day=20990101/hour=2099010100/minute=00/test.json"


def _filled(host_index: int, slot_index: int) -> bool:
    """The good store has a result in 4 of 5 slots (the others are empty slots)."""
    return (slot_index + host_index) % 5 != 0


def _slot(day: str, slot_index: int) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=IST) + timedelta(minutes=15 * slot_index)


def _good_records(sparse: bool = False):
    """The good results; ``sparse``: one per host and hour (for the slower S3 server)."""
    for h, host in enumerate(HOSTS):
        for day in DAYS:
            for i in range(96):
                if (i % 4 == h) if sparse else _filled(h, i):
                    yield result(host, _slot(day, i) + timedelta(minutes=1, seconds=h * 7),
                                 100.0 + (i * 7 + h * 13) % 50, 40.0 + i % 9, 8.0 + (i + h) % 6)


def _config(root: Path | None, state: Path, s3: S3Store | None = None):
    if s3 is not None:
        return load_config(env={}, store=f"s3://?endpoint_url={s3.endpoint_url}&region=us-east-1",
                           s3={"access_key_id": "testing", "secret_access_key": "testing"},
                           host_id="home-primary", state_dir=str(state))
    return load_config(env={}, store=str(root), host_id="home-primary", state_dir=str(state))


# --------------------------------------------------------------------------- observing a store

def _figures(data) -> dict:
    return {k: v for k, v in data.items() if k not in PROVENANCE} if isinstance(data, dict) else data


def _summaries(store) -> dict[tuple[str, str], dict]:
    """Every summary object: (bucket, key) -> its figures (without provenance)."""
    out = {}
    for bucket in sorted({B.for_tier(t) for t in TIERS}):
        bodies = fetch_many(store, bucket, [info.key for info in store.list(bucket, "aggregated/")])
        for key, body in bodies.items():
            try:
                out[(bucket, key)] = _figures(json.loads(body))
            except (TypeError, ValueError):
                out[(bucket, key)] = None
    return out


def _rows(store, config) -> dict[tuple[str, str], list[dict]]:
    return {(mode, host): query.rows(mode, QUERY_DAYS[mode], host, store=store, config=config,
                                     now=NOW, force_refresh=True)
            for mode in rowbuild.MODES for host in ("all",) + (HOSTS if mode != "minute" else ())}


def _coverage(store, config) -> dict[str, dict]:
    return {day: coverage(config, day, store=store, now=NOW) for day in GARBAGE_DAYS}


@dataclass(frozen=True, repr=False)
class Snapshot:
    summaries: dict
    rows: dict
    coverage: dict
    labels: dict  # tier -> sorted labels of the all-hosts summaries


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The good store, rolled up at NOW, and what every tool saw in it."""
    root = tmp_path_factory.mktemp("garbage") / "store"
    root.mkdir()
    store = LocalStore(root, durable=False)
    snapshot = _build(store, _config(root, root.parent / "state"))
    return root, snapshot


def _build(store, config, sparse: bool = False) -> Snapshot:
    for record in _good_records(sparse):
        put(store, record)
    run_due(config, NOW, store=store)
    summaries = _summaries(store)
    labels = {tier: sorted(layout.parse_summary_key(key).label for (bucket, key) in summaries
                           if layout.parse_summary_key(key).tier == tier
                           and layout.parse_summary_key(key).host_id is None) for tier in TIERS}
    return Snapshot(summaries, _rows(store, config), _coverage(store, config), labels)


# --------------------------------------------------------------------------- garbage

BODIES = ("list", "string", "number", "null", "empty object", "truncated", "not utf-8",
          "wrong types", "negative", "huge number", "dated 2099", "huge string")
#: Summary bodies that a reader may accept: valid by the field rules, only absurd.
MAYBE_VALID_SUMMARY = {"huge number", "dated 2099"}
RAW_NAMES = ("test.json", "legacy", "newline", "unicode", "not json", "folder", "minute=99",
             "partitions disagree")


@dataclass(frozen=True)
class Garbage:
    bucket: str
    key: str
    body: bytes
    kind: str  # raw, summary, marker
    bad: bool | None  # True: every reader must refuse it; None: may be accepted
    host: str | None = None
    slot: datetime | None = None  # raw: the slot its key names (None: none / the future)
    period: tuple[str, str] | None = None  # summary: (tier, label)
    variant: str = ""

    def __repr__(self) -> str:
        body = self.body if len(self.body) < 120 else self.body[:80] + b"..." + self.body[-20:]
        return f"Garbage({self.kind}, {self.bucket}, {self.key!r}, {body!r}, variant={self.variant!r})"


def _future_record() -> dict:
    return result(HOSTS[0], datetime(2099, 1, 1, 0, 1, tzinfo=IST)).to_dict()


def _raw_body(name: str, host: str, slot: datetime) -> bytes:
    good = result(host, slot + timedelta(minutes=2)).to_dict()
    text = json.dumps(good)
    special = {"list": b"[1,2]", "string": b'"x"', "number": b"42", "null": b"null",
               "empty object": b"{}", "truncated": text[:len(text) // 2].encode(),
               "not utf-8": b"\xff\xfe\x00{\"a\": \x81}"}
    if name in special:
        return special[name]
    changes = {"wrong types": {"download_mbps": "fast", "ping_ms": [1]},
               "negative": {"download_mbps": -5.0}, "huge number": {"download_mbps": 1e308},
               "huge string": {"host_id": "h" * 200_000}}
    if name == "dated 2099":
        return json.dumps(_future_record()).encode()
    return json.dumps({**good, **changes[name]}).encode()


def _summary_body(name: str, tier: str, label: str) -> bytes:
    good = {"tier": tier, "period": label, "host_id": None, "avg_download": 100.0,
            "avg_upload": 50.0, "avg_ping": 10.0, "records_aggregated": 4, "connection_types": ["Ethernet"]}
    text = json.dumps(good)
    special = {"list": b"[1,2]", "string": b'"x"', "number": b"42", "null": b"null",
               "empty object": b"{}", "truncated": text[:len(text) // 2].encode(),
               "not utf-8": b"\xff\xfe\x00{\"a\": \x81}", "huge string": json.dumps("s" * 200_000).encode()}
    if name in special:
        return special[name]
    changes = {"wrong types": {"avg_download": "fast", "hosts": "home-primary"},
               "negative": {"records_aggregated": -5}, "huge number": {"avg_download": 1e308},
               "dated 2099": {"period": "2099", "year": 2099}}
    return json.dumps({**good, **changes[name]}).encode()


def _raw_garbage(host: str, day: str, index: int, name: str, body: str) -> Garbage:
    slot = _slot(day, index)
    prefix = layout.raw_slot_prefix(host, slot, IST)
    good_here = day in DAYS and _filled(HOSTS.index(host), index)
    minute = f"{slot:%M}"
    keys = {"test.json": prefix + layout.RAW_NAME,
            "legacy": prefix + layout.legacy_raw_name("ookla", slot.minute, 1767000000 + index),
            "newline": prefix + "te\nst.json", "unicode": prefix + "tést ✓.json",
            "not json": prefix + "test.txt",
            # a folder named like an object (on a local store: a real folder), holding a child
            "folder": prefix + (f"speed_data_ookla_{minute}_1.json" if good_here else layout.RAW_NAME)
            + "/child.json",
            "minute=99": prefix.replace(f"minute={minute}/", "minute=99/") + layout.RAW_NAME,
            "partitions disagree": prefix.replace("year=2025/", "year=2024/", 1) + layout.RAW_NAME}
    return Garbage(B.raw, keys[name], _raw_body(body, host, slot), "raw", True, host, slot,
                   variant=name)


def _summary_garbage(tier: str, index: int, host: str | None, stray: str, body: str,
                     labels: dict) -> Garbage:
    label = labels[tier][index % len(labels[tier])]
    folder = layout.summary_dir(parse_period(tier, label, IST), host)
    # Not drawn: a folder named speed_test_summary.json/ in place of a summary on a local store.
    # The rollup cannot write that summary ("cannot write …: Is a directory") and every run-due
    # stops there with one error line until the folder is moved (S3 has no such conflict).
    name = {"canonical": layout.SUMMARY_NAME, "stray": "extra.json",
            "folder": "extra.json/child.json"}[stray]
    bad = None if body in MAYBE_VALID_SUMMARY else True
    return Garbage(B.for_tier(tier), folder + name, _summary_body(body, tier, label), "summary", bad,
                   host, period=(tier, label), variant=stray)


#: Garbage at fixed keys: the future, a host folder naming no host, odd stale markers.
FIXED = [
    # a self-consistent result from 2099, in its own slot
    Garbage(B.raw, f"host={HOSTS[0]}/{FUTURE_RAW}", json.dumps(_future_record()).encode(), "raw",
            False, HOSTS[0], None, variant="future"),
    # a key under a host id that is not one ('..')
    Garbage(B.raw, "host=../x/year=2025/month=202512/day=20251227/hour=2025122710/minute=00/test.json",
            b"[1,2]", "raw", True, None, None, variant="bad host"),
    # a yearly summary of 2099, valid by the field rules
    Garbage(B.yearly, "aggregated/year=2099/speed_test_summary.json",
            _summary_body("dated 2099", "yearly", "2099"), "summary", None, None,
            period=("yearly", "2099"), variant="future"),
    # stale markers naming an hour that does not exist, and one from the future
    Garbage(B.hourly, "stale/hour=2025122899/all.json", b"[1]", "marker", None, variant="hour 99"),
    Garbage(B.hourly, "stale/hour=2099010100/all.json", b"{}", "marker", None, variant="future"),
    Garbage(B.hourly, "stale/hour=2025122810/home-primary.json", b"\xff", "marker", None,
            variant="garbage body"),
]


@st.composite
def garbage_sets(draw, labels: dict) -> list[Garbage]:
    """One to six garbage objects at distinct keys."""
    raw = st.builds(_raw_garbage, st.sampled_from(HOSTS), st.sampled_from(GARBAGE_DAYS),
                    st.integers(0, 95), st.sampled_from(RAW_NAMES), st.sampled_from(BODIES))
    summary = st.builds(_summary_garbage, st.sampled_from(TIERS), st.integers(0, 99),
                        st.sampled_from((None,) + HOSTS), st.sampled_from(("canonical", "stray", "folder")),
                        st.sampled_from(BODIES), st.just(labels))
    fixed = st.sampled_from(FIXED)
    items = draw(st.lists(st.one_of(raw, raw, summary, fixed), min_size=1, max_size=6,
                          unique_by=lambda g: (g.bucket, g.key)))
    # a folder named like an object cannot share its name with an object on a local store
    keys = {(g.bucket, g.key) for g in items}
    return [g for g in items if not any((g.bucket, k.rsplit("/", 1)[0]) in keys
                                        for k in [g.key] if "/child.json" in k)]


# --------------------------------------------------------------------------- what is touched

def _ancestors(tier: str, label: str) -> set[tuple[str, str]]:
    period = parse_period(tier, label, IST)
    moment = period.start
    order = {"hourly": ("daily", "weekly", "monthly", "yearly"), "daily": ("weekly", "monthly", "yearly"),
             "weekly": (), "monthly": ("yearly",), "yearly": ()}
    return {(tier, label)} | {(t, period_of(t, moment, IST).label) for t in order[tier]}


def _touched(garbage: list[Garbage]) -> set[tuple[str, str]]:
    """The periods whose figures garbage may change: those holding a garbage key, their coarser
    periods, and a re-aggregated (marked) hour within a day after a touched hour (its anomaly
    baseline changed)."""
    out: set[tuple[str, str]] = set()
    for g in garbage:
        if g.kind == "raw" and g.slot is not None:
            out |= _ancestors("hourly", period_of("hourly", g.slot, IST).label)
        elif g.kind == "summary":
            out |= _ancestors(*g.period)
    hours = sorted(parse_period("hourly", label, IST).start for tier, label in out if tier == "hourly")
    for g in garbage:
        if g.kind == "marker":
            try:
                hour = parse_period("hourly", g.key.split("hour=")[1][:10], IST)
            except LayoutError:
                continue
            if any(timedelta(0) < hour.start - h <= timedelta(hours=24) for h in hours):
                out |= _ancestors("hourly", hour.label)
    return out


def _period_of_summary_key(key: str) -> tuple[str, str] | None:
    try:
        parsed = layout.parse_summary_key(key)
    except LayoutError:
        return None
    return parsed.tier, parsed.label


def _invalid_summary(store, bucket: str, key: str) -> bool:
    try:
        TierSummary.from_json(store.get(bucket, key), key)
    except InvalidRecord:
        return True
    except ObjectNotFound:
        return False
    return False


def _layout_ok(key: str) -> bool:
    try:
        layout.parse_raw_key(key)
    except LayoutError:
        return False
    return True


# --------------------------------------------------------------------------- the property

def _write(store, garbage: list[Garbage]) -> None:
    for g in garbage:
        store.put(g.bucket, g.key, g.body)


def check_garbage(store, config, snapshot: Snapshot, garbage: list[Garbage]) -> None:
    """Write ``garbage`` into the good store and check every tool (see the module docstring)."""
    _write(store, garbage)
    keys = {(g.bucket, g.key): g for g in garbage}
    raw_keys = {g.key: g for g in garbage if g.kind == "raw"}
    summary_keys = {g.key: g for g in garbage if g.kind == "summary"}
    touched = _touched(garbage)

    # ---- scheduler run-due: never raises; each bad input once, with its reason
    report = run_due(config, NOW, store=store)
    rejected = [key for key, _ in report.rejected]
    replaced = [key for key, _ in report.replaced]
    assert len(rejected) == len(set(rejected)), f"a bad object reported twice: {report.rejected}"
    assert len(replaced) == len(set(replaced)), f"a bad summary reported twice: {report.replaced}"
    assert all(why for _, why in report.rejected + report.replaced)
    marker_keys = {g.key for g in garbage if g.kind == "marker"}
    assert set(rejected) <= set(raw_keys) | marker_keys, f"a good object rejected: {set(rejected) - set(raw_keys)}"
    assert set(replaced) <= set(summary_keys), f"a good summary replaced: {set(replaced) - set(summary_keys)}"
    rolled = {(item["tier"], item["period"]) for item in report.items}
    for g in raw_keys.values():  # a bad raw object in a period rolled up again is reported
        if g.bad and g.slot is not None and g.host in HOSTS and g.variant != "partitions disagree":
            assert g.key in rejected, f"bad raw object not reported by run-due: {g.key!r}"
            assert ("hourly", period_of("hourly", g.slot, IST).label) in rolled
    for key in marker_keys:  # a marker naming no hour is skipped and reported
        assert (key in rejected) == (key.startswith("stale/hour=2025122899/")), key
    json.dumps(report.to_dict())
    assert not any(parse_period(tier, label, IST).start > NOW for tier, label in rolled), \
        f"run-due rolled up a period from the future: {sorted(rolled)}"

    # ---- every good period keeps its figures exactly; no summary of a future period appears
    after = _summaries(store)
    for (bucket, key), figures in snapshot.summaries.items():
        if (bucket, key) in keys or _period_of_summary_key(key) in touched:
            continue
        assert after.get((bucket, key)) == figures, f"figures of an untouched period changed: {key}"
    for _, key in set(after) - set(snapshot.summaries) - set(keys):
        period = _period_of_summary_key(key)
        assert period is None or parse_period(*period, IST).start <= NOW, f"summary from the future: {key}"
    # an all-hosts summary made unusable is rolled up again (replaced) once its parent is rolled
    # up; a parent that exists but is not due yet (31 December's day at 03:00 on 1 January: the
    # month's rollup made it early) reads it when it is due, checked at the end
    parent = {"hourly": "daily", "daily": "monthly", "monthly": "yearly"}
    later: list[tuple[Garbage, Period]] = []
    for g in summary_keys.values():
        if g.bad and g.host is None and g.variant == "canonical" and g.period[0] in parent:
            up = period_of(parent[g.period[0]], parse_period(*g.period, IST).start, IST)
            if up.label in snapshot.labels[up.tier] and not is_due(up, NOW):
                later.append((g, up))
            elif up.label in snapshot.labels[up.tier]:
                assert g.key in replaced or g.period in rolled, f"unusable summary left: {g.key}"
                assert not _invalid_summary(store, g.bucket, g.key)
                if not any(g.period in _touched([other]) for other in garbage if other is not g):
                    assert after[(g.bucket, g.key)] == snapshot.summaries.get((g.bucket, g.key)), \
                        f"a replaced summary's figures differ from the original: {g.key}"

    # ---- query: a row per period; an unusable summary is an 'unreadable' row with its reason
    rows = _rows(store, config)
    for (mode, host), answer in rows.items():
        before = snapshot.rows[(mode, host)]
        assert [r["period"] for r in answer] == [r["period"] for r in before]
        for row, old in zip(answer, before, strict=True):
            if mode == "minute":
                slot = datetime.fromisoformat(row["period_start"])
                here = [g for g in raw_keys.values() if g.slot == slot and (host == "all" or g.host == host)]
                if not here:
                    assert row == old, f"minute row of an untouched slot changed: {host} {row['period']}"
                else:
                    readable_bad = [g for g in here if g.bad and g.host in HOSTS and _layout_ok(g.key)]
                    assert row["rejected"] == len(readable_bad), (host, row["period"], [g.key for g in here])
                continue
            period = parse_period(mode, row["period"], IST)
            key = layout.summary_key(period, None if host == "all" else host)
            invalid = _invalid_summary(store, B.for_tier(mode), key)
            assert (row["status"] == "unreadable") == invalid, (mode, host, key, row["status"])
            if invalid:
                assert row["error"]
            elif key not in summary_keys and (mode, row["period"]) not in touched:
                assert row == old, f"row of an untouched period changed: {mode} {host} {row['period']}"

    # ---- coverage: each bad raw object of the day once in problems, with its reason
    for day, answer in _coverage(store, config).items():
        before = snapshot.coverage[day]
        assert set(answer["hosts"]) == set(before["hosts"])
        for host, cover in answer["hosts"].items():
            problems = [p["key"] for p in cover["problems"]]
            assert len(problems) == len(set(problems)), problems
            assert all(p["reason"] for p in cover["problems"])
            expected = {g.key for g in raw_keys.values() if g.bad and g.host == host and g.slot is not None
                        and f"{g.slot:%Y-%m-%d}" == day and g.variant != "partitions disagree"}
            assert set(problems) == expected
            hours_with_garbage = {f"{raw_keys[k].slot:%H}" for k in expected} | {
                f"{g.slot:%H}" for g in raw_keys.values()
                if g.host == host and g.slot is not None and f"{g.slot:%Y-%m-%d}" == day}
            for hour, figures in cover["hours"].items():
                if hour not in hours_with_garbage:
                    assert figures == before["hosts"][host]["hours"][hour], (day, host, hour)
            json.dumps(answer)

    # ---- latest: each listed object once; a bad or future one flagged with its reason
    for period in ("latest", "minutes") + TIERS:
        for host in (None,) + HOSTS:
            if period in ("latest", "minutes") and host is not None:  # raw: every host at once
                continue
            entries = latest(config, period, 1 if period == "latest" else 1000, host, store=store, now=NOW)
            listed = [e.key for e in entries]
            assert len(listed) == len(set(listed)), f"latest lists an object twice: {listed}"
            for entry in entries:
                g = keys.get((entry.bucket, entry.key))
                if (g is not None and g.variant == "future") or (
                        entry.tier != "raw" and parse_period(entry.tier, entry.label, IST).start > NOW):
                    assert entry.error, f"latest shows an object from the future as normal: {entry.key!r}"
                elif entry.tier == "raw":
                    assert bool(entry.error) == (g is not None), (entry.key, entry.error)
                else:  # a summary as it is now (run-due may have rolled it up again)
                    assert bool(entry.error) == _invalid_summary(store, entry.bucket, entry.key), \
                        (entry.key, entry.error)
            if period == "minutes":
                want = {g.key for g in raw_keys.values() if g.host in HOSTS and _layout_ok(g.key)
                        and host in (None, g.host)}
                assert want <= set(listed), f"latest --period minutes missed: {want - set(listed)}"
            elif period in TIERS:
                want = {g.key for g in summary_keys.values() if g.period[0] == period
                        and g.host == host and g.variant in ("canonical", "future")}
                assert want <= set(listed), f"latest --period {period} missed: {want - set(listed)}"
            json.dumps([e.to_dict() for e in entries])

    # ---- dedupe (dry run): never plans to delete a good object or a bad one; keys off the layout once
    plan = dedupe(config, store=store).plan
    seen = [k for _, k, _ in plan.problems] + [a.key for g in plan.groups for a in g.actions]
    assert len(seen) == len(set(seen)), f"dedupe reports an object twice: {seen}"
    assert all(r for _, _, r in plan.problems) and all(a.reason for g in plan.groups for a in g.actions)
    for bucket, key in plan.deletions:
        g = keys.get((bucket, key))
        assert g is not None and g.kind == "summary" and g.variant in ("stray", "folder"), \
            f"dedupe would delete {key!r}"
    problems = {k for _, k, _ in plan.problems}
    for g in raw_keys.values():
        if g.host not in HOSTS or not _layout_ok(g.key):  # host=../x/ too: no rollup reads it
            assert g.key in problems, f"dedupe does not report a key off the layout: {g.key!r}"
    for group in plan.groups:
        for action in group.actions:
            g = keys.get((group.bucket, action.key))
            if g is not None and g.kind == "raw" and g.bad:
                assert action.action == "skip", (action, g.key)

    # ---- health: never raises; its report is plain data
    health = run_health(config, now=NOW, store=store, send_alerts=False)
    json.dumps(health.to_dict())
    health.to_text()

    # ---- and a second run-due finds nothing left to do
    again = run_due(config, NOW, store=store)
    assert again.periods == 0, again.plan

    # ---- an unusable summary whose parent was not due yet is replaced once the parent is due
    if later:
        when = max(due_at(up) for _, up in later)
        report = run_due(config, when, store=store)
        replaced = [key for key, _ in report.replaced]
        rolled = {(item["tier"], item["period"]) for item in report.items}
        for g, up in later:
            assert (up.tier, up.label) in rolled, (g.key, report.plan)
            assert g.key in replaced or g.period in rolled, f"unusable summary left: {g.key}"
            assert not _invalid_summary(store, g.bucket, g.key)


@pytest.mark.slow
@pytest.mark.long
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_garbage_at_random_keys_crashes_nothing_and_changes_no_good_period(template, data):
    root, snapshot = template
    garbage = data.draw(garbage_sets(snapshot.labels), label="garbage")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "store"
        shutil.copytree(root, copy)  # copy2: modified times are kept
        store = LocalStore(copy, durable=False)
        check_garbage(store, _config(copy, Path(tmp) / "state"), snapshot, garbage)


@pytest.mark.slow
def test_a_day_repaired_beside_the_plan_has_its_week_judged_again_in_the_same_run(template):
    """Examples the random test found: a per-host day made garbage is rolled up again while its
    month is (its week was judged fresh before the day changed), and an hourly summary whose
    day exists but is not due yet. After run-due, a second finds nothing to do."""
    root, snapshot = template
    for garbage in ([_raw_garbage(HOSTS[0], "2025-12-29", 19, "unicode", "empty object"),
                     _summary_garbage("daily", 0, HOSTS[0], "canonical", "empty object", snapshot.labels)],
                    [_raw_garbage(HOSTS[0], "2025-12-27", 0, "test.json", "list"),
                     _summary_garbage("hourly", snapshot.labels["hourly"].index("2025123102"), None,
                                      "canonical", "list", snapshot.labels)]):
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "store"
            shutil.copytree(root, copy)
            check_garbage(LocalStore(copy, durable=False), _config(copy, Path(tmp) / "state"), snapshot, garbage)


@pytest.mark.slow
@pytest.mark.long
def test_garbage_on_s3_crashes_nothing_and_changes_no_good_period(s3_store, tmp_path):
    """One fixed example of every kind on the S3 backend (moto)."""
    config = _config(None, tmp_path / "state", s3_store)
    snapshot = _build(s3_store, config, sparse=True)
    labels = snapshot.labels
    garbage = [_raw_garbage(HOSTS[0], DAYS[0], 40, "test.json", "truncated"),  # replaces a good one
               _raw_garbage(HOSTS[1], DAYS[1], 9, "folder", "list"),  # test.json/ beside test.json
               _raw_garbage(HOSTS[0], DAYS[1], 50, "unicode", "not utf-8"),  # moto refuses a newline
               _raw_garbage(HOSTS[1], GARBAGE_DAYS[2], 3, "minute=99", "huge number"),
               _summary_garbage("daily", 0, None, "canonical", "wrong types", labels),
               _summary_garbage("hourly", 30, HOSTS[1], "canonical", "null", labels),
               _summary_garbage("monthly", 0, None, "canonical", "negative", labels),
               _summary_garbage("weekly", 0, None, "stray", "huge string", labels), *FIXED]
    check_garbage(s3_store, config, snapshot, garbage)
