"""speedlab.api over HTTP: every route, the token, 400s for bad parameters, the CLI's answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from speedlab import cache
from speedlab.api import ROUTES, api_context, handle, openapi_document
from speedlab.cli import main
from speedlab.config import load_config
from speedlab.errors import ConfigError, StoreUnavailable
from speedlab.layout import summary_key
from speedlab.periods import parse_period
from speedlab.store import LocalStore
from tests.helpers.data import IN_SLOT, put, result
from tests.helpers.servers import ApiServer, free_port, local_env, wait_for_http
from tests.helpers.synthetic import B, build_store, ist

NOW = ist(2026, 1, 5, 10, 20)
TOKEN = "t0ken-for-tests-9f3k2q"


def call(base: str, method: str, path: str, token: str | None = TOKEN, header: str = "token",
         query_token: str | None = None, **params):
    if query_token:
        params["token"] = query_token
    url = f"{base}{path}" + ("?" + urllib.parse.urlencode(params) if params else "")
    headers = {"Authorization": f"{header} {token}"} if token else {}
    request = urllib.request.Request(url, method=method, headers=headers, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.headers["Content-Type"].startswith("application/json")
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        assert exc.headers["Content-Type"].startswith("application/json"), exc.headers
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """A local store with 3 hosts' data up to NOW, a speedlab.toml, and the API serving it."""
    tmp = tmp_path_factory.mktemp("api")
    store = LocalStore(tmp / "store")
    store.root.mkdir()
    build_store(store, ist(2026, 1, 2), NOW, raw_days=1, hourly_days=1)
    toml = tmp / "speedlab.toml"
    toml.write_text(f'store = "{store.root}"\nstate_dir = "{tmp / "state"}"\n'
                    '[plan]\ndownload_mbps = 200\nupload_mbps = 100\n'
                    f'[api]\ntoken = "{TOKEN}"\npublic = ["openapi"]\n')
    config = load_config(toml, env={})
    with ApiServer(api_context(config, env={})) as server:
        yield server, toml, config


def cli_json(capsys, *argv):
    assert main([*argv, "--json"] if argv[0] != "query" else list(argv)) == 0
    return json.loads(capsys.readouterr().out)


# ----------------------------------------------------------------------------- routes = CLI

@pytest.mark.slow
def test_dashboard_equals_speedlab_query(deployment, capsys):
    server, toml, _ = deployment
    for mode, days, host in [("weekly", 2, "office-main"), ("daily", 3, "all"), ("minute", 1, "home-primary")]:
        status, body = call(server.url, "GET", "/api/dashboard", mode=mode, days=days, host=host,
                            now=NOW.isoformat())
        assert status == 200
        cache.clear_caches()
        expected = cli_json(capsys, "query", "--config", str(toml), "--mode", mode, "--days", str(days),
                            "--host", host, "--now", NOW.isoformat())
        assert body == expected and len(body) == days * (96 if mode == "minute" else 1)


def test_coverage_and_latest_equal_the_cli(deployment, capsys):
    server, toml, _ = deployment
    status, body = call(server.url, "GET", "/api/coverage", date="2026-01-04")
    assert status == 200 and body["date"] == "2026-01-04" and sorted(body["hosts"]) == [
        "backup-location", "home-primary", "office-main"]
    assert body == cli_json(capsys, "coverage", "--config", str(toml), "--date", "2026-01-04")
    status, body = call(server.url, "GET", "/api/latest", period="daily", last=3)
    assert status == 200 and [e["label"] for e in body] == ["20260104", "20260103", "20260102"]
    assert body == cli_json(capsys, "latest", "--config", str(toml), "--period", "daily", "--last", "3")
    status, body = call(server.url, "GET", "/api/latest")
    assert status == 200 and body == cli_json(capsys, "latest", "--config", str(toml))


def test_openapi_is_public_and_describes_every_route(deployment):
    server, _, _ = deployment
    status, doc = call(server.url, "GET", "/api/openapi.json", token=None)
    assert status == 200 and doc == json.loads(json.dumps(openapi_document(frozenset({"openapi"}))))
    assert sorted(doc["paths"]) == sorted(ROUTES)
    assert doc["paths"]["/api/aggregate"]["post"]["parameters"][0]["required"] is True
    assert doc["paths"]["/api/openapi.json"]["get"]["security"] == []
    assert "401" in doc["paths"]["/api/dashboard"]["get"]["responses"]


# ----------------------------------------------------------------------------- the token

@pytest.mark.parametrize("method, path", [("GET", "/api/dashboard"), ("GET", "/api/coverage"),
                                          ("GET", "/api/latest"), ("POST", "/api/aggregate")])
def test_401_without_or_with_a_wrong_token(deployment, method, path):
    server, _, _ = deployment
    for token in (None, "wrong", TOKEN[:-1]):
        status, body = call(server.url, method, path, token=token, mode="daily")
        assert status == 401 and body["status"] == 401 and "Authorization: token" in body["error"]


def test_token_in_header_bearer_or_query(deployment):
    server, _, _ = deployment
    assert call(server.url, "GET", "/api/latest", header="Bearer")[0] == 200
    assert call(server.url, "GET", "/api/latest", header="Basic")[0] == 401
    assert call(server.url, "GET", "/api/latest", token=None, query_token=TOKEN)[0] == 200
    assert call(server.url, "GET", "/api/latest", token=None, query_token="nope")[0] == 401


# ----------------------------------------------------------------------------- bad parameters

@pytest.mark.parametrize("method, path, params, words", [
    ("GET", "/api/dashboard", {"mode": "decadely"}, "unknown mode"),
    ("GET", "/api/dashboard", {"days": "abc"}, "not a whole number"),
    ("GET", "/api/dashboard", {"days": "0"}, "out of range"),
    ("GET", "/api/dashboard", {"host": "../etc"}, "invalid host id"),
    ("GET", "/api/dashboard", {"force_refresh": "maybe"}, "1/true or 0/false"),
    ("GET", "/api/dashboard", {"now": "yesterday"}, "ISO 8601"),
    ("GET", "/api/dashboard", {"dayz": "7"}, "unknown parameter(s) dayz"),
    ("GET", "/api/coverage", {"date": "2026-13-01"}, "2026-13-01"),
    ("GET", "/api/coverage", {"date": "2099-01-01"}, "2099-01-01"),
    ("GET", "/api/latest", {"period": "decade"}, "unknown period"),
    ("GET", "/api/latest", {"last": "x"}, "not a whole number"),
    ("GET", "/api/latest", {"last": "0"}, "at least 1"),
    ("POST", "/api/aggregate", {}, "mode is required"),
    ("POST", "/api/aggregate", {"mode": "daily", "period": "2025W99"}, "2025W99"),
    ("POST", "/api/aggregate", {"mode": "fortnightly"}, "unknown mode"),
    ("POST", "/api/aggregate", {"mode": "daily", "period": "2099-01-01"}, "has not started yet"),
    ("POST", "/api/aggregate", {"mode": "yearly", "period": "9999"}, "outside the dates speedlab handles"),
    ("POST", "/api/aggregate", {"mode": "daily", "period": "0001-01-01"}, "outside the dates"),
    ("POST", "/api/aggregate", {"mode": "daily", "period": ""}, "empty parameter(s) period"),
    ("POST", "/api/aggregate", {"mode": "daily", "host": ""}, "empty parameter(s) host"),
    ("GET", "/api/dashboard", {"host": ""}, "empty parameter(s) host"),
    ("GET", "/api/dashboard", {"now": "0001-01-01T00:00:00+00:00"}, "outside the dates"),
    ("GET", "/api/dashboard", {"now": "9998-12-31T23:00:00+00:00"}, "outside the dates"),
    ("GET", "/api/coverage", {"date": "0001-01-01"}, "outside the dates"),
    ("GET", "/api/coverage", {"date": "9999-12-31"}, "outside the dates"),
    ("GET", "/api/coverage", {"now": "9999-12-31T23:59:59Z"}, "outside the dates"),
    ("GET", "/api/latest", {"period": ""}, "empty parameter(s) period"),
])
def test_bad_parameters_get_400_with_the_reason(deployment, method, path, params, words):
    server, _, _ = deployment
    status, body = call(server.url, method, path, **params)
    assert (status, body["status"]) == (400, 400)
    assert words in body["error"]


def test_a_token_sent_in_the_query_never_reaches_the_access_log(deployment, caplog):
    server, _, _ = deployment
    with caplog.at_level("WARNING", logger="tornado.access"):
        # marked with a parameter of their own: an earlier test's line can arrive late on a busy machine
        assert call(server.url, "GET", "/api/latest", token=None, query_token="wrong-query-token", mark="a")[0] == 401
        assert call(server.url, "GET", "/api/latest", token=None, query_token=TOKEN, last="x", mark="b")[0] == 400
        for _ in range(100):  # the line is written just after the answer is sent
            lines = [m for r in caplog.records if r.name == "tornado.access" and "mark=" in (m := r.getMessage())]
            if len(lines) == 2:
                break
            time.sleep(0.05)
    assert len(lines) == 2 and lines[0].startswith("401 GET /api/latest?mark=a&token=**** (127.0.0.1)"), lines
    assert "last=x&mark=b&token=****" in lines[1] and not any("wrong-query-token" in x or TOKEN in x for x in lines)


def test_wrong_method_and_unreachable_store(deployment, tmp_path):
    server, _, config = deployment
    status, body = call(server.url, "GET", "/api/aggregate", mode="daily")
    assert status == 405 and "takes POST" in body["error"]
    with pytest.raises(StoreUnavailable, match="nowhere does not exist"):  # a mistyped store: at start
        api_context(config.with_overrides(store=str(tmp_path / "nowhere")), env={})
    (tmp_path / "unmounted").mkdir()
    gone = api_context(config.with_overrides(store=str(tmp_path / "unmounted")), env={})
    (tmp_path / "unmounted").rmdir()  # the store goes away while serving: 503
    status, body, _ = handle(gone, "GET", "/api/latest", {}, {"Authorization": f"token {TOKEN}"})
    assert status == 503 and "does not exist" in body["error"]


def test_a_bug_is_a_json_500_and_logged(deployment, tmp_path, monkeypatch):
    _server, _, config = deployment
    ctx = api_context(config, env={})
    monkeypatch.setattr("speedlab.latest.latest", lambda *a, **k: 1 / 0)
    status, body, _ = handle(ctx, "GET", "/api/latest", {}, {"Authorization": f"token {TOKEN}"})
    assert status == 500 and body["error"] == "internal error (ZeroDivisionError); see the api job log"
    assert "ZeroDivisionError" in ctx.log.lines[-1]["message"]


# ----------------------------------------------------------------------------- aggregate

def test_post_aggregate_rolls_up_and_answers_in_the_seed_shape(tmp_path, capsys):
    store = LocalStore(tmp_path / "store")
    store.root.mkdir()
    downloads = {"home-primary": [100.0, 120.0, 140.0, 160.0], "office-main": [400.0, 410.0, 420.0, 430.0]}
    for host, values in downloads.items():
        for i, value in enumerate(values):
            slot = ist(2026, 1, 5, 9, 15 * i)
            put(store, result(host, slot + IN_SLOT, value, value / 2))
    config = load_config(env={}, store=str(store.root), state_dir=str(tmp_path / "state"),
                         sections={"api": {"token": TOKEN}})
    with ApiServer(api_context(config, env={}, now=NOW)) as server:
        status, body = call(server.url, "POST", "/api/aggregate", mode="hourly", period="2026010509")
        assert status == 200
        assert (body["message"], body["mode"]) == ("ok", "hourly")
        summary = body["result"]
        assert summary["hour"] == "2026-01-05T09" and summary["records_aggregated"] == 8
        assert summary["avg_download"] == pytest.approx(sum(sum(v) for v in downloads.values()) / 8)
        assert summary["hosts"] == ["home-primary", "office-main"]
        stored = json.loads(store.get(B.hourly, summary_key(parse_period("hourly", "2026010509", "Asia/Kolkata"))))
        assert stored == summary
        assert main(["aggregate", "--store", str(store.root), "--mode", "hourly", "--period", "2026010509",
                     "--now", NOW.isoformat()]) == 0
        by_cli = json.loads(capsys.readouterr().out)
        generated = {"generated_at"}  # when it ran
        assert {k: v for k, v in by_cli["result"].items() if k not in generated} == \
            {k: v for k, v in summary.items() if k not in generated}
        assert (by_cli["message"], by_cli["mode"]) == ("ok", "hourly")
        status, one = call(server.url, "POST", "/api/aggregate", mode="hourly", period="2026010509",
                           host="office-main")
        assert status == 200 and one["result"]["avg_download"] == pytest.approx(415.0)
        status, none = call(server.url, "POST", "/api/aggregate", mode="hourly", period="2026010509",
                            host="backup-location")
        assert status == 400 and "stored nothing" in none["error"]


def test_api_settings_are_checked(deployment):
    _, _, config = deployment
    for table, words in [({"public": ["aggregate"]}, "cannot be opened"), ({"token": ""}, "non-empty"),
                         ({"tokens": "x"}, "unknown key")]:
        with pytest.raises(ConfigError, match=words):
            api_context(config.with_overrides(sections={"api": table}), env={})
    made = api_context(config.with_overrides(sections={}), env={})
    assert made.token_generated and len(made.token) >= 32
    from_env = "x" * 16
    assert api_context(config.with_overrides(sections={}), env={"SPEEDLAB_API_TOKEN": from_env}).token == from_env
    assert api_context(config.with_overrides(sections={}), env={}, fallback_token="voila").token == "voila"


def test_a_short_api_token_is_refused_in_one_line_saying_how_to_make_one(deployment):
    _, _, config = deployment
    for sections, env, where in [({"api": {"token": "abc"}}, {}, r"\[api\] token has 3 characters"),
                                 ({"api": {"token": "  " + "y" * 15 + "  "}}, {}, "15 characters"),
                                 ({}, {"SPEEDLAB_API_TOKEN": "short"}, r"\$SPEEDLAB_API_TOKEN has 5")]:
        with pytest.raises(ConfigError, match=where) as caught:
            api_context(config.with_overrides(sections=sections), env=env)
        message = str(caught.value)
        assert "\n" not in message and "secrets.token_urlsafe(24)" in message and "fewer than 16" in message
        assert "abc" not in message.split("characters")[0].replace("[api]", "")  # the token is never quoted
    assert api_context(config.with_overrides(sections={"api": {"token": "a" * 16}}), env={}).token == "a" * 16


# ----------------------------------------------------------------------------- inside Voilà

@pytest.mark.slow
def test_speedlab_dashboard_api_serves_both_on_one_port(deployment):
    """`speedlab dashboard --api`: Voilà's own routes and the API in one tornado server."""
    _, toml, _ = deployment
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "speedlab.cli", "dashboard", "--api", "--port", str(port),
                                "--config", str(toml), "--now", NOW.isoformat()],
                               env=local_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base + "/voila/static/favicon.ico", timeout_s=60, process=process)
        with urllib.request.urlopen(base + "/voila/static/favicon.ico", timeout=10) as response:
            assert response.status == 200
        assert call(base, "GET", "/api/latest", token=None)[0] == 401
        status, body = call(base, "GET", "/api/dashboard", mode="daily", days=2)
        assert status == 200 and [row["date_ist"] for row in body] == ["2026-01-04", "2026-01-05"]
        assert call(base, "GET", "/api/openapi.json", token=None)[0] == 200
        assert call(base, "GET", "/api/latest", token=None, query_token="leaky-query-token")[0] == 401
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl+C: `speedlab dashboard` stops its Voila child and exits
        try:
            _, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    assert "speedlab api: http://127.0.0.1:" in err.decode()
    assert "/api/latest?token=**** " in err.decode() and "leaky-query-token" not in err.decode()
