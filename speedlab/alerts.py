"""Alert channels: a generic JSON webhook, e-mail over SMTP, and the job log.

:mod:`speedlab.health` decides *when* to alert (debounced, once per incident, with a recovery
message); this module only says it. Payloads and messages are built by pure functions
(:func:`webhook_payload`, :func:`email_message`); the channel classes send them.

Configuration (``speedlab.toml``)::

    [alerts]
    log = true                                  # also write alerts to the health job log
    webhook_url = "https://hooks.slack.com/services/T000/B000/XXXX"   # one webhook, or:
    webhook_format = "slack"                    # generic (default) | slack | discord | ntfy | gotify

    [alerts.webhooks.phone]                     # any number of named webhooks
    webhook_url = "https://ntfy.sh"
    format = "ntfy"
    topic = "speedlab-home"                     # ntfy's topic (JSON publishing posts to the root URL)
    token = "tk_..."                            # sent as "Authorization: Bearer <token>" (ntfy, Gotify)
    headers = { "X-Extra" = "value" }           # anything else the receiver needs
    timeout_s = 10

    [alerts.email]
    smtp_host = "smtp.example.com"
    smtp_port = 587
    security = "starttls"                       # starttls (default) | ssl | none
    username = "alerts@example.com"
    password = "..."                            # or password_env = "SPEEDLAB_SMTP_PASSWORD"
    from = "speedlab <alerts@example.com>"
    to = ["ops@example.com"]

The ``generic`` payload carries every field the common receivers read, so one URL format
works for Slack (``text``), Discord (``content``), ntfy (``topic``, ``title``, ``message``,
``priority`` 1-5, ``tags``), Gotify (``title``, ``message``, ``priority``) and anything that
wants structured data (``speedlab``: kind, check, subject, incident id, details). Pick a named
format to send only one service's fields.
"""

from __future__ import annotations

import http.client
import json
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field, fields
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

from .errors import AlertDeliveryError, ConfigError
from .masking import mask_secrets, mask_url, url_secrets
from .settings import FORMATS, AlertSettings, EmailSettings, WebhookSettings

__all__ = ["Alert", "AlertDeliveryError", "EmailChannel", "LogChannel", "WebhookChannel",
           "channels_from_config", "deliver", "email_message", "webhook_payload",
           "Channel", "headline"]

#: Discord refuses ``content`` longer than this [characters].
DISCORD_MAX_CHARS = 2000


@dataclass(frozen=True)
class Alert:
    """One message about one incident.

    Attributes
    ----------
    kind : str
        ``incident`` (a problem started) or ``recovery`` (it cleared).
    check : str
        The check's id, ``KIND:SUBJECT`` (``below_expected:home-primary``, ``tier_stale:daily``).
    subject : str
        What the check is about: a host, a tier, a scheduled job.
    title : str
        One short line.
    message : str
        What is wrong (or that it cleared) and what to do.
    time_utc : str
        When the alert was raised (ISO 8601, UTC).
    incident_id : str
        The same for an incident's alert and its recovery.
    details : dict
        Numbers behind the message (JSON-serialisable).
    """

    kind: str
    check: str
    subject: str
    title: str
    message: str
    time_utc: str
    incident_id: str
    details: dict = field(default_factory=dict)

    @property
    def check_kind(self) -> str:
        """The part of :attr:`check` before ``:`` (``below_expected``)."""
        return self.check.split(":", 1)[0]

    def to_dict(self) -> dict:
        """Plain data (state files, ``--json``, the webhook's ``speedlab`` field)."""
        return {"kind": self.kind, "check": self.check, "subject": self.subject, "title": self.title,
                "message": self.message, "time_utc": self.time_utc, "incident_id": self.incident_id,
                "details": self.details}

    @classmethod
    def from_dict(cls, data: dict) -> Alert:
        """The inverse of :meth:`to_dict`."""
        return cls(**{k: data[k] for k in ("kind", "check", "subject", "title", "message",
                                             "time_utc", "incident_id")}, details=data.get("details") or {})


# =========================================================================== pure builders

def headline(alert: Alert) -> str:
    """``[speedlab] ALERT: title`` or ``[speedlab] RESOLVED: title``."""
    return f"[speedlab] {'RESOLVED' if alert.kind == 'recovery' else 'ALERT'}: {alert.title}"


def webhook_payload(alert: Alert, fmt: str = "generic", topic: str | None = None) -> dict:
    """The JSON body a webhook receives (see the module docstring for the fields)."""
    if fmt not in FORMATS:
        raise ConfigError(f"webhook format {fmt!r} is not one of {', '.join(FORMATS)}")
    text = f"{headline(alert)}\n{alert.message}"
    recovery = alert.kind == "recovery"
    ntfy = {"title": headline(alert), "message": alert.message, "priority": 3 if recovery else 4,
            "tags": ["white_check_mark" if recovery else "warning", "speedlab"]}
    if topic:
        ntfy["topic"] = topic
    if fmt == "slack":
        return {"text": text}
    if fmt == "discord":
        return {"content": text[:DISCORD_MAX_CHARS]}
    if fmt == "ntfy":
        return ntfy
    if fmt == "gotify":
        return {"title": ntfy["title"], "message": alert.message, "priority": 4 if recovery else 8}
    return {"text": text, "content": text[:DISCORD_MAX_CHARS], **ntfy, "speedlab": alert.to_dict()}


def email_message(alert: Alert, sender: str, recipients: list[str]) -> EmailMessage:
    """The e-mail for one alert: the headline as subject, message and details as text."""
    msg = EmailMessage()
    msg["Subject"] = headline(alert)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain="speedlab")
    msg["X-Speedlab-Incident"] = alert.incident_id
    details = json.dumps(alert.details, indent=2, sort_keys=True, default=str)
    msg.set_content(f"{alert.message}\n\ncheck: {alert.check}\nincident: {alert.incident_id}\n"
                    f"time (UTC): {alert.time_utc}\n\ndetails:\n{details}\n")
    return msg


# =========================================================================== channels

class Channel(Protocol):
    """What a channel does: a ``name`` and ``send(alert)`` that raises AlertDeliveryError."""

    name: str

    def send(self, alert: Alert) -> None:
        """Deliver one alert or raise :class:`AlertDeliveryError`."""


@dataclass(frozen=True)
class WebhookChannel(WebhookSettings):
    """POST the alert as JSON to ``url``: one webhook of ``[alerts]`` (the fields of
    :class:`~speedlab.settings.WebhookSettings`; ``name`` is the channel's, ``webhook:NAME``)."""

    @classmethod
    def of(cls, hook: WebhookSettings) -> WebhookChannel:
        """The channel of one configured webhook."""
        values = {f.name: getattr(hook, f.name) for f in fields(hook)}
        return cls(**{**values, "name": f"webhook:{hook.name}", "headers": dict(hook.headers)})

    def send(self, alert: Alert) -> None:
        body = json.dumps(webhook_payload(alert, self.format, self.topic)).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "speedlab-alerts",
                   **({"Authorization": f"Bearer {self.token}"} if self.token else {}),
                   **{str(k): str(v) for k, v in self.headers.items()}}
        where = mask_url(self.url)  # a webhook's path (and any user:password@) is its secret
        secrets = _channel_secrets(self)
        try:
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise AlertDeliveryError(f"webhook {self.name} ({where}) answered HTTP {exc.code}: check "
                                     "its URL, format and token") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = mask_secrets(str(getattr(exc, "reason", exc)), secrets)
            raise AlertDeliveryError(f"webhook {self.name} ({where}) could not be reached: {reason}") from None
        except (ValueError, http.client.InvalidURL):  # its message would quote the URL's password
            raise AlertDeliveryError(f"webhook {self.name} ({where}) has a URL that cannot be sent to "
                                     "(user:password@ is not supported: send credentials with headers "
                                     "or token): check its webhook_url") from None


@dataclass
class EmailChannel:
    """Send the alert by SMTP (``starttls``, ``ssl`` or plain ``none``)."""

    name: str
    smtp_host: str
    sender: str
    recipients: list[str]
    smtp_port: int = 587
    security: str = "starttls"
    username: str | None = None
    password: str | None = None
    timeout_s: float = 20.0

    def send(self, alert: Alert) -> None:
        msg = email_message(alert, self.sender, self.recipients)
        try:
            smtp: smtplib.SMTP
            if self.security == "ssl":
                smtp = smtplib.SMTP_SSL(self.smtp_host, self.smtp_port, timeout=self.timeout_s,
                                        context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout_s)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(msg)
        except (smtplib.SMTPException, OSError) as exc:
            reason = mask_secrets(str(exc), [self.password] if self.password else [])
            raise AlertDeliveryError(f"e-mail via {self.smtp_host}:{self.smtp_port} failed: {reason}; "
                                     "check [alerts.email] (host, port, security, login)") from None
        if refused:
            raise AlertDeliveryError(f"e-mail via {self.smtp_host} refused recipient(s) "
                                     f"{', '.join(sorted(refused))}")


@dataclass
class LogChannel:
    """Write the alert to a :class:`~speedlab.joblog.JobLog` (warning; recovery as info)."""

    log: Any
    name: str = "log"

    def send(self, alert: Alert) -> None:
        level = "info" if alert.kind == "recovery" else "warning"
        self.log.log(level, headline(alert) + " - " + alert.message, alert=alert.kind,
                     check=alert.check, incident_id=alert.incident_id)


# =========================================================================== configuration

def _email(settings: EmailSettings, env) -> EmailChannel:
    password = settings.password
    if settings.password_env:
        password = env.get(settings.password_env)
        if password is None:
            raise ConfigError(f"[alerts.email] password_env names {settings.password_env}, which is not set")
    return EmailChannel("email", settings.smtp_host, settings.sender, list(settings.recipients),
                        settings.smtp_port, settings.security, settings.username, password, settings.timeout_s)


def channels_from_config(settings: AlertSettings, log=None, env=None) -> list:
    """The channels the ``[alerts]`` table configures (``config.alerts``, checked at load).

    Parameters
    ----------
    settings : AlertSettings
    log : JobLog, optional
        The log channel writes here (when ``log`` is not switched off).
    env : mapping, optional
        For ``password_env`` (default ``os.environ``).

    Raises
    ------
    ConfigError
        When ``[alerts.email] password_env`` names a variable that is not set.
    """
    env = os.environ if env is None else env
    channels: list = []
    if settings.log and log is not None:
        channels.append(LogChannel(log))
    channels += [WebhookChannel.of(hook) for hook in settings.webhooks]
    if settings.email is not None:
        channels.append(_email(settings.email, env))
    return channels


def _channel_secrets(channel) -> list[str]:
    """What a channel's error messages must not show: its webhook URL's path and password,
    token, header values, SMTP password."""
    found = [str(v) for v in (getattr(channel, "token", None), getattr(channel, "password", None),
                              *dict(getattr(channel, "headers", None) or {}).values()) if v]
    url = getattr(channel, "url", None)
    return found + (url_secrets(url, with_path=True) if isinstance(url, str) else [])


def deliver(alert: Alert, channels: list, skip: set[str] | frozenset = frozenset()) -> dict[str, str | None]:
    """Send ``alert`` on every channel not in ``skip``; never raises.

    Returns
    -------
    dict
        Channel name -> ``None`` (delivered) or the error message (to retry later), masked by
        :func:`speedlab.masking.mask_secrets` (webhook URLs and tokens never appear in it).
    """
    out: dict[str, str | None] = {}
    for channel in channels:
        if channel.name in skip:
            continue
        try:
            channel.send(alert)
            out[channel.name] = None
        except AlertDeliveryError as exc:
            out[channel.name] = mask_secrets(str(exc), _channel_secrets(channel))
        except Exception as exc:  # a broken channel must not stop the others
            out[channel.name] = mask_secrets(f"{type(exc).__name__}: {exc}", _channel_secrets(channel))
    return out
