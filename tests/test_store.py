"""One contract suite, run against every backend (local folder, S3 on a moto server)."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from speedlab.counting import CountingStore
from speedlab.errors import (
    BucketNotFound,
    ConfigError,
    CredentialsRefused,
    ObjectNotFound,
    StoreError,
    StoreUnavailable,
)
from speedlab.store import LocalStore, open_store
from speedlab.store_s3 import S3Store

BUCKET = "vd-speed-test"


def test_put_get_roundtrip(store):
    store.put(BUCKET, "host=a/x.json", b'{"a": 1}')
    assert store.get(BUCKET, "host=a/x.json") == b'{"a": 1}'
    store.put(BUCKET, "host=a/x.json", b'{"a": 2}')  # overwrite
    assert store.get(BUCKET, "host=a/x.json") == b'{"a": 2}'


@pytest.mark.parametrize("size", [0, 1, 600, (1 << 16) - 1, 1 << 16, 300_001])
def test_objects_of_any_size_come_back_byte_for_byte(store, size):
    data = bytes((i * 7 + size) % 251 for i in range(size))
    store.put(BUCKET, f"sizes/{size}.bin", data)
    assert store.get(BUCKET, f"sizes/{size}.bin") == data


def test_local_get_of_a_folder_is_not_found(local_store):
    local_store.put(BUCKET, "a/b/c.json", b"{}")
    with pytest.raises(ObjectNotFound, match="is a folder"):
        local_store.get(BUCKET, "a/b")


def test_local_write_failing_midway_leaves_no_temporary_file(local_store, monkeypatch):
    import errno
    import os
    local_store.put(BUCKET, "a/old.json", b"{}")

    def disk_full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(StoreUnavailable, match="No space left"):
        local_store.put(BUCKET, "a/new.json", b'{"n": 1}')
    monkeypatch.undo()
    assert sorted(p.name for p in (local_store.root / BUCKET / "a").iterdir()) == ["old.json"]


def test_get_missing_raises_not_found(store):
    with pytest.raises(ObjectNotFound, match=r"nope\.json"):
        store.get(BUCKET, "host=a/nope.json")


def test_put_if_absent_refuses_second_writer_and_keeps_first(store):
    assert store.put_if_absent(BUCKET, "k/slot.json", b"first") is True
    assert store.put_if_absent(BUCKET, "k/slot.json", b"second") is False
    assert store.get(BUCKET, "k/slot.json") == b"first"


def test_sixteen_threads_race_one_key_exactly_one_wins(store):
    barrier = threading.Barrier(16)
    results: list[bool] = []
    lock = threading.Lock()

    def writer(i: int) -> None:
        barrier.wait()
        won = store.put_if_absent(BUCKET, "race/test.json", f"writer-{i}".encode())
        with lock:
            results.append(won)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 16
    assert results.count(True) == 1
    assert store.get(BUCKET, "race/test.json").decode().startswith("writer-")
    assert [info.key for info in store.list(BUCKET, "race/")] == ["race/test.json"]


def test_list_by_prefix_sorted_with_sizes_and_times(store):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    keys = ["host=b/year=2025/2.json", "host=a/year=2025/1.json", "host=a/year=2026/3.json",
            "aggregated/year=2025/speed_test_summary.json"]
    for i, key in enumerate(keys):
        store.put(BUCKET, key, b"x" * (i + 1))
    listed = list(store.list(BUCKET, "host=a/"))
    assert [i.key for i in listed] == ["host=a/year=2025/1.json", "host=a/year=2026/3.json"]
    assert [i.size for i in listed] == [2, 3]
    assert all(i.modified >= before.replace(second=0) for i in listed)
    assert [i.key for i in store.list(BUCKET, "host=a/year=202")] == [
        "host=a/year=2025/1.json", "host=a/year=2026/3.json"]
    assert [i.key for i in store.list(BUCKET)] == sorted(keys)
    assert list(store.list(BUCKET, "host=zzz/")) == []
    # a key range: after start_after, before before (both bounds exclusive; folders cut across)
    assert [i.key for i in store.list(BUCKET, "host=", start_after="host=a/year=2025/")] == [
        "host=a/year=2025/1.json", "host=a/year=2026/3.json", "host=b/year=2025/2.json"]
    assert [i.key for i in store.list(BUCKET, "host=", start_after="host=a/year=2025/1.json",
                                      before="host=b/")] == ["host=a/year=2026/3.json"]
    assert [i.key for i in store.list(BUCKET, "", before="host=a/year=2026/3.json")] == [
        "aggregated/year=2025/speed_test_summary.json", "host=a/year=2025/1.json"]
    assert list(store.list(BUCKET, "host=", start_after="host=b/year=2025/2.json")) == []


@pytest.mark.slow
def test_list_pages_past_one_thousand_keys(store):
    from concurrent.futures import ThreadPoolExecutor
    keys = [f"p/{i:05d}.json" for i in range(1005)]  # S3 answers 1000 keys a page
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: store.put(BUCKET, key, b"{}"), keys))
    assert [i.key for i in store.list(BUCKET, "p/")] == keys
    pages = []
    client = getattr(store, "_client", None)
    if client is not None:  # S3: a range stops asking for pages once it is past ``before``
        client.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: pages.append(1))
    assert [i.key for i in store.list(BUCKET, "p/", start_after="p/00002.json", before="p/00005")] == [
        "p/00003.json", "p/00004.json"]
    assert [i.key for i in store.list(BUCKET, "p/", start_after="p/00998.json")] == keys[999:]
    assert pages == ([1, 1] if client is not None else [])


def test_list_prefixes_enumerates_hosts(store):
    for host in ("home-primary", "office-main", "backup-location"):
        store.put(BUCKET, f"host={host}/year=2025/x.json", b"{}")
    store.put(BUCKET, "aggregated/year=2025/speed_test_summary.json", b"{}")
    assert store.list_prefixes(BUCKET, "host=") == [
        "host=backup-location/", "host=home-primary/", "host=office-main/"]
    assert store.list_prefixes(BUCKET, "") == [
        "aggregated/", "host=backup-location/", "host=home-primary/", "host=office-main/"]


def test_delete_is_idempotent_and_listing_is_current(store):
    store.put(BUCKET, "d/one.json", b"1")
    store.put(BUCKET, "d/two.json", b"2")
    store.delete(BUCKET, "d/one.json")
    store.delete(BUCKET, "d/one.json")
    assert [i.key for i in store.list(BUCKET, "d/")] == ["d/two.json"]
    with pytest.raises(ObjectNotFound):
        store.get(BUCKET, "d/one.json")


def test_create_bucket_is_idempotent(store):
    assert store.bucket_exists("speedlab-new-bucket") is False
    assert store.create_bucket("speedlab-new-bucket") is True
    assert store.create_bucket("speedlab-new-bucket") is False
    assert store.bucket_exists("speedlab-new-bucket") is True


def test_missing_bucket_is_a_clear_error_or_empty(store):
    if isinstance(store, S3Store):
        with pytest.raises(BucketNotFound, match=r"does not exist.*create it"):
            store.put("no-such-bucket", "k.json", b"{}")
        with pytest.raises(BucketNotFound):
            list(store.list("no-such-bucket"))
    else:  # a local bucket is a folder, made on first write
        assert list(store.list("no-such-bucket")) == []
        store.put("no-such-bucket", "k.json", b"{}")
        assert store.get("no-such-bucket", "k.json") == b"{}"


# ------------------------------------------------------------------ backend specifics

def test_local_write_is_atomic_no_temp_files_left(local_store):
    local_store.put(BUCKET, "a/b.json", b"{}")
    local_store.put_if_absent(BUCKET, "a/b.json", b"{}")
    names = sorted(p.name for p in (local_store.root / BUCKET / "a").iterdir())
    assert names == ["b.json"]


def test_local_rejects_keys_that_escape_the_root(local_store):
    for key in ("../evil.json", "a/../../evil.json", "/abs.json", "a//b.json"):
        with pytest.raises(StoreError, match="invalid key"):
            local_store.put(BUCKET, key, b"{}")


def test_local_missing_root_is_unavailable(tmp_path):
    store = LocalStore(tmp_path / "does-not-exist")
    with pytest.raises(StoreUnavailable, match="does not exist"):
        list(store.list(BUCKET))


def test_s3_server_down_is_unavailable():
    down = S3Store(endpoint_url="http://127.0.0.1:9", access_key_id="x", secret_access_key="y",
                   max_attempts=1)
    with pytest.raises(StoreUnavailable, match="cannot reach"):
        down.get(BUCKET, "k.json")


def test_s3_access_denied_maps_to_credentials_refused(s3_store):
    from botocore.exceptions import ClientError
    exc = ClientError({"Error": {"Code": "InvalidAccessKeyId", "Message": "bad"},
                       "ResponseMetadata": {"HTTPStatusCode": 403}}, "GetObject")
    err = s3_store._translate(exc, BUCKET, "k.json")
    assert isinstance(err, CredentialsRefused)
    assert "refused access" in str(err) and "check the credentials" in str(err)


def test_s3_unusable_credentials_are_told_apart_from_a_denied_key(s3_store):
    """The spool sets aside an entry whose key is denied but keeps every entry when no key would do."""
    from botocore.exceptions import ClientError

    from speedlab.errors import CredentialsInvalid
    from speedlab.spool import is_refusal

    def translate(code):
        return s3_store._translate(ClientError({"Error": {"Code": code, "Message": "no"},
                                                "ResponseMetadata": {"HTTPStatusCode": 403}}, "PutObject"),
                                   BUCKET, "host=office-main/k.json")
    for code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
        assert isinstance(translate(code), CredentialsInvalid) and not is_refusal(translate(code))
    denied = translate("AccessDenied")
    assert isinstance(denied, CredentialsRefused) and not isinstance(denied, CredentialsInvalid)
    assert is_refusal(denied)


@pytest.mark.slow
def test_open_store_urls(tmp_path):
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    assert open_store(tmp_path.as_uri()).root == tmp_path
    s3 = open_store("s3://?endpoint_url=http://127.0.0.1:1&region=eu-west-1",
                    access_key_id="a", secret_access_key="b")
    assert isinstance(s3, S3Store)
    assert s3.endpoint_url == "http://127.0.0.1:1" and s3.region == "eu-west-1"
    with pytest.raises(ConfigError, match="unknown store"):
        open_store("ftp://example/x")
    with pytest.raises(ConfigError, match="unknown S3 store option"):
        open_store("s3://?colour=blue")


def test_open_store_refuses_a_missing_local_folder_unless_asked_to_create_it(tmp_path):
    with pytest.raises(StoreUnavailable, match="does not exist or is not a folder"):
        open_store(str(tmp_path / "typo"))
    with pytest.raises(StoreUnavailable, match="does not exist or is not a folder"):
        open_store((tmp_path / "typo").as_uri())
    assert not (tmp_path / "typo").exists()
    assert open_store(str(tmp_path / "typo"), create=True).root.is_dir()
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(StoreUnavailable, match="is not a folder"):
        open_store(str(tmp_path / "a-file"), create=True)


def test_open_store_refuses_a_bucket_in_an_s3_url_and_masks_credentials_in_errors():
    with pytest.raises(ConfigError, match=r"names a bucket \('vd-speed-test'\)"):
        open_store("s3://vd-speed-test?endpoint_url=http://127.0.0.1:1")
    with pytest.raises(ConfigError) as info:
        open_store("s3://?endpoint_url=http://127.0.0.1:1&secret_access_key=shown-nowhere&colour=blue")
    assert "unknown S3 store option(s) colour" in str(info.value) and "shown-nowhere" not in str(info.value)
    assert "secret_access_key=****" in str(info.value)


def test_open_store_url_numbers_are_converted_and_checked():
    s3 = open_store("s3://?endpoint_url=http://127.0.0.1:1&max_attempts=2&max_pool_connections=5",
                    access_key_id="a", secret_access_key="b")
    assert s3.client.meta.config.retries["total_max_attempts"] == 3  # botocore: retries + 1
    assert s3.client.meta.config.max_pool_connections == 5
    with pytest.raises(ConfigError, match=r"max_attempts='abc' .* whole number of at least 1"):
        open_store("s3://?endpoint_url=http://127.0.0.1:1&max_attempts=abc")
    with pytest.raises(ConfigError, match=r"max_pool_connections='0'"):
        open_store("s3://?endpoint_url=http://127.0.0.1:1&max_pool_connections=0")


def test_unknown_aws_profile_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    with pytest.raises(ConfigError, match="AWS profile 'nope' is not in"):
        open_store("s3://?endpoint_url=http://127.0.0.1:1&profile=nope")


def _temp_file(folder, name, age_s):
    import os
    import time
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{LocalStore._TMP}{name}"
    path.write_bytes(b'{"half": ')
    os.utime(path, (time.time() - age_s, time.time() - age_s))
    return path


def test_local_temp_files_of_a_killed_writer_are_never_listed_and_removed_once_stale(local_store):
    local_store.put("b", "day=1/hour=01/summary.json", b"{}")
    folder = local_store.root / "b" / "day=1" / "hour=01"
    stale = _temp_file(folder, "killed", LocalStore.TEMP_MAX_AGE_S + 60)
    fresh = _temp_file(folder, "writing", 5)        # a write in progress: left alone
    elsewhere = _temp_file(local_store.root / "b" / "day=2", "killed", 3600)
    assert [i.key for i in local_store.list("b")] == ["day=1/hour=01/summary.json"]
    assert (stale.exists(), fresh.exists(), elsewhere.exists()) == (False, True, False)
    assert local_store.list_prefixes("b", "day=1/") == ["day=1/hour=01/"]
    # a write into a folder holding a stale temporary file removes it too (no listing needed)
    again = _temp_file(folder, "killed-again", 3600)
    local_store.put_if_absent("b", "day=1/hour=01/other.json", b"{}")
    assert not again.exists() and fresh.exists()


def test_local_put_over_a_folder_says_what_stands_in_the_way(local_store):
    local_store.create_bucket("b")
    (local_store.root / "b" / "x" / "summary.json").mkdir(parents=True)
    with pytest.raises(StoreUnavailable, match=r"summary.json: a folder stands where this object belongs; move"):
        local_store.put("b", "x/summary.json", b"{}")
    assert not [p for p in (local_store.root / "b").rglob("*") if ".speedlab-tmp" in p.name]


# --------------------------------------------------------------------------- compare-and-swap

def test_get_versioned_and_put_if_version_swap_only_the_version_read(store):
    assert store.get_versioned(BUCKET, "tables/t.parquet") == (b"", None)
    assert store.put_if_version(BUCKET, "tables/t.parquet", b"one", None) is True
    assert store.put_if_version(BUCKET, "tables/t.parquet", b"again", None) is False  # exists now
    body, first = store.get_versioned(BUCKET, "tables/t.parquet")
    assert body == b"one" and first
    assert [i.version for i in store.list(BUCKET, "tables/")] == [first]  # the listing's token is the same
    assert store.put_if_version(BUCKET, "tables/t.parquet", b"two", first) is True
    body, second = store.get_versioned(BUCKET, "tables/t.parquet")
    assert body == b"two" and second != first
    assert store.put_if_version(BUCKET, "tables/t.parquet", b"stale", first) is False
    assert store.get(BUCKET, "tables/t.parquet") == b"two"
    store.put(BUCKET, "tables/t.parquet", b"two")  # a plain put of the same bytes is a new write too ...
    _, third = store.get_versioned(BUCKET, "tables/t.parquet")
    if isinstance(store, LocalStore):  # ... locally a new version; S3's ETag is the content's MD5
        assert third != second
    store.delete(BUCKET, "tables/t.parquet")
    assert store.put_if_version(BUCKET, "tables/t.parquet", b"gone", third) is False
    assert store.get_versioned(BUCKET, "tables/t.parquet") == (b"", None)


def test_put_returns_the_version_get_versioned_and_list_give(store):
    first = store.put(BUCKET, "aggregated/v/summary.json", b'{"a": 1}')
    assert first and store.get_versioned(BUCKET, "aggregated/v/summary.json") == (b'{"a": 1}', first)
    assert [i.version for i in store.list(BUCKET, "aggregated/v/")] == [first]
    second = store.put(BUCKET, "aggregated/v/summary.json", b'{"a": 22}')  # overwritten: a new version
    assert second != first
    assert store.get_versioned(BUCKET, "aggregated/v/summary.json") == (b'{"a": 22}', second)
    assert [i.version for i in store.list(BUCKET, "aggregated/v/")] == [second]
    assert CountingStore(store).put(BUCKET, "aggregated/v/summary.json", b"{}") == \
        store.get_versioned(BUCKET, "aggregated/v/summary.json")[1]  # the wrapper forwards it
    # a bulk writer's put: whole and visible at once, with its version; durable once sync_writes returns
    counting = CountingStore(store)
    deferred = counting.put_deferred(BUCKET, "aggregated/v/summary.json", b'{"a": 333}')
    assert deferred and deferred != second and counting.counts["put"] == 1
    assert store.get_versioned(BUCKET, "aggregated/v/summary.json") == (b'{"a": 333}', deferred)
    counting.sync_writes()
    assert [(i.version, i.size) for i in store.list(BUCKET, "aggregated/v/")] == [(deferred, 10)]
    assert counting.requests == 1  # a sync is not a request


def test_local_deferred_puts_skip_the_fsyncs_that_one_sync_of_the_batch_replaces(local_store, monkeypatch):
    import os
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    local_store.put(BUCKET, "a/0.json", b"{}")
    assert len(synced) == 2  # the file, then its folder
    synced.clear()
    for i in range(5):
        local_store.put_deferred(BUCKET, f"a/{i}.json", f'{{"n": {i}}}'.encode())
    assert synced == []
    local_store.sync_writes()  # one syncfs of the store's file system
    assert [(i.key, local_store.get(BUCKET, i.key)) for i in local_store.list(BUCKET, "a/")] == [
        (f"a/{i}.json", f'{{"n": {i}}}'.encode()) for i in range(5)]
    assert [p.name for p in (local_store.root / BUCKET / "a").iterdir() if p.name.startswith(".speedlab-tmp")] == []


def test_eight_threads_race_one_compare_and_swap_exactly_one_wins(store):
    store.put_if_version(BUCKET, "tables/race.parquet", b"base", None)
    _, base = store.get_versioned(BUCKET, "tables/race.parquet")
    barrier = threading.Barrier(8)
    results: list[bool] = []
    lock = threading.Lock()

    def writer(i: int) -> None:
        barrier.wait()
        won = store.put_if_version(BUCKET, "tables/race.parquet", f"writer-{i}".encode(), base)
        with lock:
            results.append(won)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert store.get(BUCKET, "tables/race.parquet").decode().startswith("writer-")
    assert [info.key for info in store.list(BUCKET, "tables/")] == ["tables/race.parquet"]


def test_eight_threads_incrementing_through_compare_and_swap_lose_no_update(store):
    store.put_if_version(BUCKET, "tables/counter", b"0", None)

    def add_one() -> None:
        for _ in range(100):
            body, version = store.get_versioned(BUCKET, "tables/counter")
            if store.put_if_version(BUCKET, "tables/counter", str(int(body) + 1).encode(), version):
                return
        raise AssertionError("never won")

    threads = [threading.Thread(target=add_one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get(BUCKET, "tables/counter") == b"8"


def test_s3_credentials_are_the_ones_given(s3_store):
    assert s3_store.credentials() == ("testing", "testing", None)
