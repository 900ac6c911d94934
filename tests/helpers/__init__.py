"""What the tests (and the benchmarks, run as ``python -m benchmarks.bench_NAME``) build on.

- :mod:`tests.helpers.data`: the one result factory, putting results and summaries into a store, reading back.
- :mod:`tests.helpers.synthetic`: a synthetic multi-host store with summaries computed by plain Python sums.
- :mod:`tests.helpers.servers`: servers on 127.0.0.1 (moto), child-process environments, Chromium, output checks.
- :mod:`tests.helpers.venvs`: offline virtual environments and work-tree copies for the install tests.
- :mod:`tests.helpers.fake_speedtest`: a speedtest.net impersonation and a quick engine.
- :mod:`tests.helpers.alert_receivers`: a webhook receiver and an SMTP sink.
"""
