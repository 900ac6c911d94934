"""speedlab.alerts: payloads, the webhook and SMTP channels against local receivers, the log."""

from __future__ import annotations

import json

import pytest

from speedlab.alerts import (
    Alert,
    AlertDeliveryError,
    EmailChannel,
    LogChannel,
    WebhookChannel,
    channels_from_config,
    deliver,
    email_message,
    webhook_payload,
)
from speedlab.errors import ConfigError
from speedlab.joblog import JobLog
from speedlab.settings import AlertSettings
from tests.helpers.alert_receivers import SMTPSink, WebhookReceiver
from tests.helpers.servers import free_port

ALERT = Alert("incident", "below_expected:home-primary", "home-primary", "home-primary below expected speed",
              "5 of the last 5 results are below 80% of the plan", "2025-12-29T08:50:00Z",
              "below_expected:home-primary@20251229T085000Z", {"bad_of_recent": [5, 5]})
RECOVERY = Alert("recovery", ALERT.check, ALERT.subject, "home-primary back to expected speed",
                 "0 of the last 1 results are below", "2025-12-29T09:50:00Z", ALERT.incident_id)


def test_payload_formats():
    text = "[speedlab] ALERT: home-primary below expected speed\n5 of the last 5 results are below 80% of the plan"
    assert webhook_payload(ALERT, "slack") == {"text": text}
    assert webhook_payload(ALERT, "discord") == {"content": text}
    assert webhook_payload(ALERT, "ntfy", topic="home") == {
        "topic": "home", "title": "[speedlab] ALERT: home-primary below expected speed",
        "message": ALERT.message, "priority": 4, "tags": ["warning", "speedlab"]}
    assert webhook_payload(RECOVERY, "gotify") == {
        "title": "[speedlab] RESOLVED: home-primary back to expected speed",
        "message": RECOVERY.message, "priority": 4}
    generic = webhook_payload(ALERT)
    assert generic["text"] == generic["content"] == text
    assert generic["speedlab"] == ALERT.to_dict() and "topic" not in generic
    assert Alert.from_dict(generic["speedlab"]) == ALERT
    long = Alert(**{**ALERT.to_dict(), "message": "x" * 5000})
    assert len(webhook_payload(long, "discord")["content"]) == 2000
    with pytest.raises(ConfigError, match="not one of"):
        webhook_payload(ALERT, "teams")


def test_email_message_is_pure_and_complete():
    msg = email_message(ALERT, "speedlab@example.org", ["a@example.org", "b@example.org"])
    assert msg["Subject"] == "[speedlab] ALERT: home-primary below expected speed"
    assert msg["To"] == "a@example.org, b@example.org"
    assert msg["X-Speedlab-Incident"] == ALERT.incident_id
    body = msg.get_content()
    assert body.startswith(ALERT.message) and '"bad_of_recent"' in body


def test_webhook_posts_json_with_token():
    with WebhookReceiver() as hook:
        WebhookChannel("webhook:x", hook.url, "ntfy", topic="t", token="tk_123",
                       headers={"X-Extra": "1"}).send(ALERT)
    assert hook.received == [webhook_payload(ALERT, "ntfy", "t")]
    assert hook.headers[0]["Authorization"] == "Bearer tk_123"
    assert hook.headers[0]["X-Extra"] == "1"
    assert hook.headers[0]["Content-Type"] == "application/json"


def test_webhook_errors_say_what_happened():
    with WebhookReceiver(status=500) as hook, pytest.raises(AlertDeliveryError, match="answered HTTP 500"):
        WebhookChannel("webhook:x", hook.url + "?secret=1").send(ALERT)
    with pytest.raises(AlertDeliveryError, match="could not be reached") as info:
        WebhookChannel("webhook:x", f"http://127.0.0.1:{free_port()}/hook?secret=1", timeout_s=2).send(ALERT)
    assert "secret" not in str(info.value)  # the query string may hold a token


def test_email_over_smtp_to_a_local_sink():
    with SMTPSink() as sink:
        EmailChannel("email", "127.0.0.1", "speedlab@example.org", ["ops@example.org"],
                     smtp_port=sink.port, security="none").send(RECOVERY)
    assert len(sink.messages) == 1
    got = sink.messages[0]
    assert got["from"] == "speedlab@example.org" and got["to"] == ["ops@example.org"]
    assert got["message"]["Subject"] == "[speedlab] RESOLVED: home-primary back to expected speed"
    assert got["message"]["X-Speedlab-Incident"] == ALERT.incident_id
    with pytest.raises(AlertDeliveryError, match=r"check \[alerts\.email\]"):
        EmailChannel("email", "127.0.0.1", "a@b.c", ["d@e.f"], smtp_port=free_port(),
                     security="none", timeout_s=2).send(ALERT)


def test_log_channel_writes_the_job_log(tmp_path):
    log = JobLog(tmp_path, "health", "home-primary")
    LogChannel(log).send(ALERT)
    LogChannel(log).send(RECOVERY)
    lines = [json.loads(x) for x in (tmp_path / "health.jsonl").read_text().splitlines()]
    assert [(x["level"], x["alert"], x["incident_id"]) for x in lines] == [
        ("warning", "incident", ALERT.incident_id), ("info", "recovery", ALERT.incident_id)]
    assert lines[0]["message"].startswith("[speedlab] ALERT: home-primary below expected speed - 5 of")


def test_channels_from_config(tmp_path):
    log = JobLog(tmp_path, "health")
    channels = channels_from_config(AlertSettings.from_table({
        "webhook_url": "https://hooks.example.org/a", "webhook_format": "slack",
        "webhooks": {"phone": {"webhook_url": "https://ntfy.example.org", "format": "ntfy",
                               "topic": "home", "token": "tk"}},
        "email": {"smtp_host": "smtp.example.org", "from": "a@example.org", "to": "b@example.org",
                  "security": "ssl", "password_env": "SMTP_PW"}}), log, env={"SMTP_PW": "pw"})
    assert [c.name for c in channels] == ["log", "webhook:default", "webhook:phone", "email"]
    assert channels[1].format == "slack" and channels[2].topic == "home" and channels[2].token == "tk"
    assert (channels[3].smtp_port, channels[3].password, channels[3].recipients) == (465, "pw", ["b@example.org"])
    assert [c.name for c in channels_from_config(AlertSettings.from_table({"log": False}), log)] == []
    for table, words in [({"webhook_url": "ftp://x"}, "http\\(s\\) URL"),
                         ({"webhooks": {"x": {"webhook_url": "https://x", "format": "teams"}}}, "format 'teams'"),
                         ({"email": {"smtp_host": "h"}}, "needs smtp_host, from and to"),
                         ({"email": {"smtp_host": "h", "from": "a", "to": "b", "password_env": "NOPE"}}, "not set"),
                         ({"pager": 1}, "unknown key")]:
        with pytest.raises(ConfigError, match=words):
            channels_from_config(AlertSettings.from_table(table), log, env={})


def test_deliver_keeps_going_when_one_channel_fails():
    class Broken:
        name = "broken"

        def send(self, alert):
            raise RuntimeError("boom")

    with WebhookReceiver() as hook:
        result = deliver(ALERT, [Broken(), WebhookChannel("webhook:ok", hook.url)])
        skipped = deliver(ALERT, [Broken(), WebhookChannel("webhook:ok", hook.url)], skip={"webhook:ok"})
    assert result == {"broken": "RuntimeError: boom", "webhook:ok": None}
    assert skipped == {"broken": "RuntimeError: boom"}
    assert len(hook.received) == 1


def test_a_failed_webhook_delivery_never_shows_the_url_path_or_password(tmp_path, capsys):
    from speedlab.cli import main
    store = tmp_path / "data"
    (store / "vd-speed-test").mkdir(parents=True)
    cfg = tmp_path / "speedlab.toml"
    with WebhookReceiver(status=500) as hook:
        cfg.write_text(f'store = "{store}"\n[health]\ntiers = []\nhosts = ["office-main"]\n'
                       f'[alerts]\nwebhook_url = "http://127.0.0.1:{free_port()}/services/T0/B0/hooksecretpath"\n'
                       '[alerts.webhooks.basic]\nwebhook_url = "https://alerts:pa55w0rd-secret@127.0.0.1/notify"\n'
                       f'[alerts.webhooks.failing]\nwebhook_url = "{hook.url}/failing-secret-path?token=tok-secret"\n')
        assert main(["health", "--config", str(cfg)]) == 1
    captured = capsys.readouterr()
    written = captured.out + captured.err + (store / "_speedlab" / "logs" / "health.jsonl").read_text()
    written += (store / "_speedlab" / "health" / "state.json").read_text()
    assert "delivery failed" in captured.out and "could not be reached" in written
    assert "has a URL that cannot be sent to" in written and "answered HTTP 500" in written
    for secret in ("hooksecretpath", "pa55w0rd-secret", "failing-secret-path", "tok-secret"):
        assert secret not in written, secret
    assert "http://127.0.0.1:" in written and "/****" in written  # scheme and host stay: say which hook
