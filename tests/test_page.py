"""speedlab.page's latency cards and table columns: figures when measured, "not measured" otherwise."""

from __future__ import annotations

import re

from speedlab import rowbuild
from speedlab.page import NOT_MEASURED, TABLE_COLUMNS, headline_html, latency_cards, table_html


def cards(markup: str) -> dict[str, tuple[str, str]]:
    """``{data-stat: (value, detail)}`` of the headline's cards."""
    found = re.findall(r'<div class="speedlab-card" data-stat="([^"]+)">.*?<div class="value">([^<]*)</div>'
                       r'(?:<div class="detail">([^<]*)</div>)?</div>', markup)
    return {key: (value, detail) for key, value, detail in found}


def a_row(**latency) -> dict:
    row = dict.fromkeys(rowbuild.ROW_FIELDS)
    row.update(period="20260101", date_ist_str="2026-01-01", status="ok", tests=4, failed=0, rejected=0,
               download_avg=180.0, upload_avg=90.0, ping_avg=9.0, download_count=4, upload_count=4, ping_count=4,
               coverage_pct=100.0, error=None, **latency)
    return row


def stats_of(**latency) -> dict:
    stats = rowbuild.headline([a_row()])
    stats.update(latency)
    return stats


def test_the_headline_shows_latency_jitter_loss_and_the_rpm_grade_when_measured():
    stats = stats_of(latency_idle_avg=18.24, latency_download_avg=95.0, latency_upload_avg=145.0, jitter_avg=2.06,
                     packet_loss_avg=0.5)
    got = cards(headline_html(stats))
    assert got["latency_idle"] == ("18.2 ms", "")
    assert got["latency_loaded"] == ("120.0 ms", "download 95.0 ms / upload 145.0 ms")
    assert got["jitter"] == ("2.1 ms", "")
    assert got["packet_loss"] == ("0.50 %", "")
    assert got["rpm"] == ("Medium · 500 RPM", "video calls may stutter while someone downloads or uploads")
    assert got["download_avg"] == ("180.00 Mbit/s", "")                # the other cards as they were
    high = cards(headline_html(stats_of(latency_download_avg=40.0)))
    assert high["rpm"][0] == "High · 1500 RPM" and high["latency_loaded"] == ("40.0 ms", "download 40.0 ms")
    low = cards(headline_html(stats_of(latency_upload_avg=600.0)))
    assert low["rpm"][0] == "Low · 100 RPM" and "lag badly" in low["rpm"][1]


def test_unmeasured_latency_says_so_and_never_shows_a_number():
    for stats in (stats_of(), {k: v for k, v in stats_of().items() if "latency" not in k and "jitter" not in k
                               and "packet_loss" not in k}):   # a headline without the latency keys at all
        got = cards(headline_html(stats))
        for key in ("latency_idle", "latency_loaded", "jitter", "packet_loss", "rpm"):
            assert got[key] == (NOT_MEASURED, ""), key
    only_idle = {key: value for key, _, value, _ in latency_cards(stats_of(latency_idle_avg=20.0, jitter_avg=1.0))}
    assert only_idle == {"latency_idle": "20.0 ms", "latency_loaded": NOT_MEASURED, "jitter": "1.0 ms",
                         "packet_loss": NOT_MEASURED, "rpm": NOT_MEASURED}


def test_the_table_shows_each_rows_loaded_latency_and_rpm():
    names = [name for _, name in TABLE_COLUMNS]
    assert names[:6] == ["date_ist_str", "download_avg", "upload_avg", "ping_avg", "latency_loaded_avg", "rpm"]
    rows = [a_row(latency_download_avg=80.0, latency_upload_avg=None), a_row(latency_download_avg=100.0,
                                                                              latency_upload_avg=140.0), a_row()]
    cells = [re.findall(r'<td data-col="([^"]+)">([^<]*)</td>', tr)
             for tr in re.findall(r"<tr class=.*?</tr>", table_html(rows))]
    got = [(dict(row)["latency_loaded_avg"], dict(row)["rpm"]) for row in cells]
    assert got == [("80.00", "750"), ("120.00", "500"), ("—", "—")]
