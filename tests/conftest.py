"""Fixtures shared by every test module: stores on both backends, a moto S3 server."""

from __future__ import annotations

import pytest

from speedlab.config import load_config
from speedlab.layout import Buckets
from speedlab.store import LocalStore
from speedlab.store_s3 import S3Store
from tests.helpers.servers import MotoServer, isolate_environment

isolate_environment()  # tests talk to 127.0.0.1 only


def pytest_collection_modifyitems(config, items):
    """Every test that talks to the moto S3 server is ``slow``: the fast loop
    (``-m "not slow and not browser"``) runs the local backend, the full suite runs both."""
    for item in items:
        if "moto_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
    # Longest files first: the suite runs two files at a time (``--dist loadfile``) in this order,
    # so a long file collected late would run alone at the end. Files with browser tests come
    # first, then files with a ``long`` test (30 s or more), then by how many slow tests they
    # hold; a file's tests stay together and in order.
    def file_of(item) -> str:
        return item.nodeid.split("::")[0]

    weight: dict[str, tuple[bool, bool, int]] = {}
    for item in items:
        browser, long, slow = weight.get(file_of(item), (False, False, 0))
        weight[file_of(item)] = (browser or "browser" in item.keywords, long or "long" in item.keywords,
                                 slow + ("slow" in item.keywords))
    items.sort(key=lambda item: (not weight[file_of(item)][0], not weight[file_of(item)][1],
                                 -weight[file_of(item)][2]))


@pytest.fixture(scope="session")
def moto_server():
    """One moto_server process for the session; tests that use it get it reset."""
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def s3_store(moto_server):
    """An S3 store on a freshly reset moto server, with every default bucket created."""
    moto_server.reset()
    store = S3Store(endpoint_url=moto_server.endpoint_url, region="us-east-1",
                    access_key_id="testing", secret_access_key="testing")
    for bucket in set(Buckets().as_dict().values()):
        store.create_bucket(bucket)
    return store


@pytest.fixture
def local_store(tmp_path):
    """An empty local store in a temporary folder."""
    root = tmp_path / "store"
    root.mkdir()
    return LocalStore(root)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])
def store(request):
    """Each test using this runs once per backend."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture
def config_for(tmp_path):
    """``config_for(store, **overrides)`` -> a Config pointing at ``store``."""
    def make(store, **overrides):
        s3 = {}
        if isinstance(store, S3Store):
            s3 = {"endpoint_url": store.endpoint_url, "region": "us-east-1",
                  "access_key_id": "testing", "secret_access_key": "testing"}
        overrides.setdefault("host_id", "home-primary")
        overrides.setdefault("state_dir", str(tmp_path / "state"))
        return load_config(env={}, store=store.url.split("?")[0] if s3 else store.url, s3=s3,
                           **overrides)
    return make
