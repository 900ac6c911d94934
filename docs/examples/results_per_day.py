"""A new operator tool in a few lines: stored results per host and day, and crowded slots.

Uses the library API for tools: the configuration and its store, the layout's key parser and
the duplicate detector. Run it against any store::

    python docs/examples/results_per_day.py --store ./speedlab-data
    python docs/examples/results_per_day.py --store "s3://?endpoint_url=http://127.0.0.1:9000"
"""

import argparse
from collections import Counter

from speedlab.config import load_config
from speedlab.dedupe import find_duplicates
from speedlab.errors import LayoutError
from speedlab.layout import parse_raw_key

parser = argparse.ArgumentParser(description="Stored results per host and day.")
parser.add_argument("--store", help="a folder, file:///path or s3:// (default: speedlab.toml)")
args = parser.parse_args()

config = load_config(store=args.store)
store = config.open_store()

per_day = Counter()
for info in store.list(config.buckets.raw, "host="):       # one listing, always current
    try:
        key = parse_raw_key(info.key)                        # host, local slot, legacy name?
    except LayoutError:
        continue                                             # not a result (speedlab coverage lists these)
    per_day[key.host_id, key.slot_local.date(), "legacy" if key.legacy else "speedlab"] += 1

for (host, day, kind), count in sorted(per_day.items()):
    print(f"{host:15} {day}  {kind:8} {count:3d} objects")

plan = find_duplicates(store, config.buckets, scope="raw", tz=config.timezone)
print(f"{len(plan.groups)} crowded slots; `speedlab dedupe --delete` would remove "
      f"{len(plan.deletions)} extras")
