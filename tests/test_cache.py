"""speedlab.cache's shared layer: the cache a dashboard server's kernels share (one JSON file per key)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from speedlab import cache
from speedlab.cache import CACHE_DIR_ENV, DataCache, SharedEntries, cache_for
from speedlab.config import load_config
from speedlab.counting import CountingStore
from speedlab.query import get_rows
from speedlab.store import LocalStore
from tests.helpers.synthetic import build_store, ist

NOW = ist(2026, 1, 5, 10, 20)
ROWS = [{"period": "20260104", "download_avg": 185.25, "hosts": ["a", "b"], "error": None, "complete": True}]


@pytest.fixture(autouse=True)
def fresh_caches():
    cache.clear_caches()
    yield
    cache.clear_caches()


def test_two_caches_on_one_folder_share_entries(tmp_path):
    first, second = DataCache(shared=SharedEntries(tmp_path / "c")), DataCache(shared=SharedEntries(tmp_path / "c"))
    loads = []
    value, hit = first.get_or_load("daily_all_daily_7", lambda: loads.append(1) or ROWS)
    assert (value, hit) == (ROWS, False)
    assert second.get_or_load("daily_all_daily_7", lambda: loads.append(1) or ["other"]) == (ROWS, True)
    assert loads == [1] and second.keys() == ["daily_all_daily_7"]
    # a copy: changing what a caller got changes neither the file nor the other process's view
    got = second.get("daily_all_daily_7")
    got[0]["download_avg"] = -1
    assert first.get("daily_all_daily_7") == ROWS == second.get("daily_all_daily_7")
    (file,) = (tmp_path / "c").glob("*.json")
    assert json.loads(file.read_text()) == {"key": "daily_all_daily_7", "host": None, "value": ROWS}
    assert first._entries == {}                          # held in the folder, not in this process


def test_shared_entries_expire_after_the_ttl_by_modification_time(tmp_path):
    clock = [time.time()]
    shared = SharedEntries(tmp_path, ttl_s=120, clock=lambda: clock[0])
    assert shared.put("k", ROWS)
    stamp = shared.path("k").stat().st_mtime
    clock[0] = stamp + 119.9
    assert shared.get("k") == ROWS
    clock[0] = stamp + 120.001   # not exactly 120: (stamp + 120.0) - stamp rounds either way at 1.7e9 s
    assert shared.get("k") is None and shared.keys() == []
    other = DataCache(shared=SharedEntries(tmp_path, ttl_s=120, clock=lambda: clock[0]))
    assert other.get_or_load("k", lambda: ["new"]) == (["new"], False)   # an expired entry is reloaded


def test_force_refresh_bypasses_the_shared_entry_and_renews_it(tmp_path):
    first, second = DataCache(shared=SharedEntries(tmp_path)), DataCache(shared=SharedEntries(tmp_path))
    first.get_or_load("k", lambda: ["old"])
    assert second.get_or_load("k", lambda: ["new"], force_refresh=True) == (["new"], False)
    assert first.get_or_load("k", lambda: ["never"]) == (["new"], True)    # the other process sees it


def test_values_json_cannot_hold_stay_in_the_process(tmp_path):
    shared_cache = DataCache(shared=SharedEntries(tmp_path))
    value = [("a", 1)]                                   # a tuple comes back from JSON as a list
    assert shared_cache.get_or_load("t", lambda: value) == (value, False)
    assert shared_cache.get_or_load("t", lambda: ["never"]) == (value, True)
    assert list(tmp_path.glob("*.json")) == []
    assert not SharedEntries(tmp_path).put("nan", [float("nan")])


def test_invalidate_removes_one_hosts_shared_entries(tmp_path):
    first, second = DataCache(shared=SharedEntries(tmp_path)), DataCache(shared=SharedEntries(tmp_path))
    first.put("daily_all_daily_3", ["all"], host="all")
    first.put("daily_office-main_daily_3", ["office"], host="office-main")
    assert second.invalidate("office-main") == 1
    assert first.keys() == ["daily_all_daily_3"] and first.get("daily_office-main_daily_3") is None


def test_a_removed_folder_falls_back_to_this_process(tmp_path):
    shared_cache = DataCache(shared=SharedEntries(tmp_path / "gone" / "sub"))  # the parent does not exist
    assert shared_cache.get_or_load("k", lambda: ["v"]) == (["v"], False)
    assert shared_cache.get_or_load("k", lambda: ["never"]) == (["v"], True)


def test_shared_result_is_computed_once_per_input_for_every_process_on_the_folder(tmp_path, monkeypatch):
    calls = []

    def render(spec):
        calls.append(spec)
        return f"<svg>{spec['n']}</svg>"

    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)
    assert cache.shared_result("svg", {"n": 1}, render) == "<svg>1</svg>"   # no shared folder: computed
    assert cache.shared_result("svg", {"n": 1}, render) == "<svg>1</svg>" and len(calls) == 2
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    calls.clear()
    assert cache.shared_result("svg", {"n": 1, "m": [2]}, render) == "<svg>1</svg>"
    # each call reads the folder afresh, as another kernel would; key order does not matter
    assert cache.shared_result("svg", {"m": [2], "n": 1}, render) == "<svg>1</svg>"
    assert len(calls) == 1 and list((tmp_path / "svg").glob("*.json"))
    assert cache.shared_result("svg", {"n": 2, "m": [2]}, render) == "<svg>2</svg>"   # other inputs: computed
    assert cache.shared_result("other", {"n": 1, "m": [2]}, render) == "<svg>1</svg>"  # other kind: computed
    assert len(calls) == 3
    assert cache.shared_result("svg", {"n": 1, "m": [2]}, render, ttl_s=0) == "<svg>1</svg>"  # expired: again
    assert len(calls) == 4
    # entries are named by their inputs' hash, never overwritten: expired ones go when another is written
    assert not list((tmp_path / "svg").glob("*.json"))   # under a TTL of 0 every entry was expired
    assert cache.shared_result("svg", {"n": 3}, render) == "<svg>3</svg>"
    stale = next((tmp_path / "svg").glob("*.json"))
    os.utime(stale, (time.time() - 200, time.time() - 200))
    assert cache.shared_result("svg", {"n": 4}, render) == "<svg>4</svg>"
    assert not stale.exists() and len(list((tmp_path / "svg").glob("*.json"))) == 1


def test_concurrent_loads_of_one_key_in_two_caches_read_once(tmp_path):
    caches = [DataCache(shared=SharedEntries(tmp_path)) for _ in range(2)]  # separate in-process locks
    loads = []

    def slow_load():
        loads.append(1)
        time.sleep(0.2)
        return ["v"]
    answers = []
    threads = [threading.Thread(target=lambda c=c: answers.append(c.get_or_load("k", slow_load))) for c in caches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1 and sorted(hit for _, hit in answers) == [False, True]


@pytest.fixture
def site(tmp_path):
    store = LocalStore(tmp_path / "store")
    store.root.mkdir()
    build_store(store, ist(2026, 1, 1), NOW, hosts=("home-primary", "office-main"), raw_days=0, hourly_days=0,
                tiers=("daily",))
    config = load_config(env={}, store=str(store.root), state_dir=str(tmp_path / "state"))
    return store, config


def test_cache_for_keys_shared_entries_by_store_and_configuration(site, tmp_path):
    store, config = site
    shared = tmp_path / "shared"
    shared.mkdir()
    mine = cache_for(store, config, NOW, shared_dir=shared)
    assert mine is cache_for(store, config, NOW, shared_dir=shared)
    other_store = LocalStore(tmp_path / "elsewhere")
    other_zone = config.with_overrides(timezone="UTC")
    others = [cache_for(other_store, config, NOW, shared_dir=shared),
              cache_for(store, other_zone, NOW, shared_dir=shared),
              cache_for(store, config, ist(2026, 1, 4), shared_dir=shared), cache_for(store, config, NOW)]
    mine.put("daily_all_daily_3", ["mine"])
    assert all(c.get("daily_all_daily_3") is None for c in others)
    folders = {c.shared.folder for c in [mine, *others] if c.shared is not None}
    assert len(folders) == 4 and all(f.parent == shared for f in folders)
    assert others[-1].shared is None                    # no folder named: this process only


@pytest.mark.slow
def test_a_second_process_reads_the_rows_the_first_one_loaded(site, tmp_path, monkeypatch):
    store, config = site
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv(CACHE_DIR_ENV, str(shared))
    first = get_rows("daily", 3, "office-main", store=store, config=config, now=NOW)
    assert not first.from_cache
    code = ("import json, sys\n"
            "from datetime import datetime\n"
            "from speedlab.config import load_config\n"
            "from speedlab.counting import CountingStore\n"
            "from speedlab.query import get_rows\n"
            "config = load_config()\n"
            "store = CountingStore(config.open_store())\n"
            f"now = datetime.fromisoformat('{NOW.isoformat()}')\n"
            "answer = get_rows('daily', 3, 'office-main', store=store, config=config, now=now)\n"
            "print(json.dumps({'hit': answer.from_cache, 'rows': answer.rows, 'gets': store.counts.get('get', 0)}))\n")
    env = {**os.environ, **config.child_env(), CACHE_DIR_ENV: str(shared)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    child = json.loads(done.stdout)
    assert child == {"hit": True, "rows": first.rows, "gets": 0}
    counting = CountingStore(store)
    refreshed = get_rows("daily", 3, "office-main", store=counting, config=config, now=NOW, force_refresh=True)
    assert not refreshed.from_cache and counting.counts["get"] > 0     # read the store again
