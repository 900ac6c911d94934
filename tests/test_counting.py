"""The request-counting store wrapper: counts by kind, forwards everything."""

from __future__ import annotations

import inspect

from speedlab.counting import CountingStore
from speedlab.layout import Buckets
from speedlab.storebase import Store

B = Buckets()


def test_counting_store_counts_list_pages(local_store):
    counting = CountingStore(local_store)
    for i in range(3):
        counting.put(B.raw, f"k/{i}.json", b"{}")
    assert len(list(counting.list(B.raw, "k/"))) == 3
    assert counting.get(B.raw, "k/1.json") == b"{}"
    assert dict(counting.counts) == {"put": 3, "list": 1, "list_pages": 1, "get": 1}
    assert counting.requests == 5
    assert CountingStore(counting).counts is counting.counts


def test_every_store_protocol_method_is_counted_and_the_rest_forwarded(local_store):
    protocol = {name for name, _ in inspect.getmembers(Store, inspect.isfunction) if not name.startswith("_")}
    assert protocol, "the Store protocol lists its methods"
    own = set(vars(CountingStore))
    assert protocol <= own, f"add a counted method for {sorted(protocol - own)}"
    counting = CountingStore(local_store)
    assert isinstance(counting, Store)
    assert counting.root == local_store.root  # a backend's own attribute, forwarded
    assert counting.bucket_exists(B.raw) is False and counting.counts["head"] == 1
