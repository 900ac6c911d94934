"""One rule for secrets in text that speedlab writes out (pure; no I/O).

Everything speedlab prints, logs or keeps (``config show``, scheduler entries, notebook run
records, job logs, alert delivery errors, error messages, the API's access log) goes through
:func:`mask_secrets` (text) or :func:`mask_data` (JSON-like data). The rule:

* a URL's userinfo password: ``https://user:pw@host`` -> ``https://user:****@host``;
* the value of a URL query parameter whose name looks secret (:func:`is_secret_name`:
  ``secret``, ``token``, ``key``, ``password``, ``signature``, ``credential``, ...):
  ``?access_key_id=AKIA..&secret_access_key=..`` -> ``?access_key_id=****&secret_access_key=****``;
* known secret values (from the configuration, :func:`secret_values`), wherever they appear:
  keys, tokens, passwords, and the path of every webhook URL (a webhook's path *is* its
  secret: ``https://hooks.slack.com/services/T0/B0/XXXX`` -> ``https://hooks.slack.com/****``).

Where a secret must not be written at all (scheduler entries, notebook parameters), the
caller takes it out with :func:`split_credentials` and hands it on another way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = ["MASK", "CREDENTIAL_OPTIONS", "is_secret_name", "mask_data", "mask_secrets", "mask_url",
           "secret_values", "split_credentials", "url_secrets"]

#: What a secret is replaced by.
MASK = "****"
#: Store URL options that are credentials (never written into a scheduler entry or a notebook).
CREDENTIAL_OPTIONS = ("access_key_id", "secret_access_key", "session_token")
_SECRET_NAME = re.compile(r"secret|passw|pwd|token|credential|signature|private|auth|apikey|"
                          r"(^|[_.-])key($|[_.-])|^sig$", re.IGNORECASE)
# a query parameter inside a URL: ?name=value or &name=value (value up to the next delimiter)
_QUERY_PARAM = re.compile(r"(?P<lead>[?&;])(?P<name>[A-Za-z0-9_.\-]+)=(?P<value>[^&#\s'\"<>;,)\]}]*)")
# userinfo of a URL: scheme://user:password@
_USERINFO = re.compile(r"(?P<lead>\b[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@'\"]*):(?P<password>[^/\s@'\"]+)@")
_MIN_KNOWN = 4  # shorter "secrets" would mask ordinary words everywhere


def is_secret_name(name: str) -> bool:
    """Whether a setting or URL query parameter called ``name`` holds a secret (its value is
    masked): ``secret``, ``password``, ``token``, ``key`` (``access_key_id``, ``api_key``),
    ``signature``, ``credential``, ``auth``...; not ``..._env`` (that names a variable)."""
    name = str(name or "")
    return bool(_SECRET_NAME.search(name)) and not name.lower().endswith("_env")


def mask_url(url: str) -> str:
    """A webhook-style URL reduced to what may be shown: scheme and host, path masked
    (``https://hooks.slack.com/****``); userinfo is dropped."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # an unparseable port: keep nothing after the scheme
        return f"{url.split('://', 1)[0]}://{MASK}" if "://" in url else MASK
    if not parts.scheme or not host:
        return MASK
    tail = f"/{MASK}" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{tail}"


def mask_secrets(text: str, known: Iterable[str] = ()) -> str:
    """``text`` with secrets replaced by ``****`` (see the module docstring for the rule).

    Parameters
    ----------
    text : str
    known : iterable of str
        Secret values to mask wherever they appear (:func:`secret_values`); values shorter
        than 4 characters are ignored.
    """
    if not isinstance(text, str) or not text:
        return text
    for value in sorted({v for v in known if isinstance(v, str) and len(v) >= _MIN_KNOWN},
                        key=len, reverse=True):
        for form in {value, json.dumps(value)[1:-1]}:
            text = text.replace(form, MASK)
    text = _USERINFO.sub(lambda m: f"{m['lead']}:{MASK}@", text)
    return _QUERY_PARAM.sub(lambda m: f"{m['lead']}{m['name']}={MASK}"
                            if is_secret_name(m["name"]) and m["value"] not in ("", MASK) else m[0], text)


def mask_data(data: Any, known: Iterable[str] = (), *, by_name: bool = False, key: str = "") -> Any:
    """``data`` (dicts, lists, strings) with every string masked by :func:`mask_secrets`.

    With ``by_name`` (settings tables) the whole value of every entry whose name
    :func:`is_secret_name` is masked too; without it (job log lines, run records: speedlab's
    own fields, where ``key`` is a storage key) only the text rules and ``known`` apply.
    """
    known = tuple(known)
    if isinstance(data, dict):
        return {k: mask_data(v, known, by_name=by_name, key=str(k)) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [mask_data(v, known, by_name=by_name, key=key) for v in data]
    if isinstance(data, str) and data and by_name and is_secret_name(key):
        return MASK
    if isinstance(data, str):
        return mask_secrets(data, known)
    return data


def url_secrets(url: str, with_path: bool = False) -> list[str]:
    """The parts of a URL that are secret: the userinfo password, the values of secret-named
    query parameters, and with ``with_path`` (webhook URLs) the whole path and query."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # an unparseable port (user:password@ confusing the parser): all of it
        return [url.split("://", 1)[-1]]
    out = [password] if password else []
    out += [v for k, v in parse_qsl(parts.query) if is_secret_name(k)]
    if with_path:
        out.append(parts.path.lstrip("/") + ("?" + parts.query if parts.query else ""))
    return [v for v in out if v]


def secret_values(config) -> list[str]:
    """Every secret value the configuration holds, for :func:`mask_secrets`'s ``known``.

    ``[s3]`` keys, credentials in the store URL, and in every other table each value whose
    name :func:`is_secret_name` plus the path, query and password of every webhook URL
    (``webhook_url``, ``url``).
    """
    found: list[str] = [v for k, v in dict(getattr(config, "s3", {}) or {}).items()
                        if isinstance(v, str) and is_secret_name(k)]
    found += url_secrets(str(getattr(config, "store", "") or ""))

    def walk(table: Any, name: str = "") -> None:
        if isinstance(table, dict):
            for k, v in table.items():
                walk(v, str(k))
        elif isinstance(table, (list, tuple)):
            for v in table:
                walk(v, name)
        elif isinstance(table, str) and table:
            if name in ("webhook_url", "url") and "://" in table:
                found.extend(url_secrets(table, with_path=True))
            elif is_secret_name(name):
                found.append(table)

    walk(dict(getattr(config, "sections", {}) or {}))
    return sorted({v for v in found if len(v) >= _MIN_KNOWN})


def split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """Take the credentials out of an ``s3://`` store URL.

    Returns
    -------
    (str, dict)
        The URL without ``access_key_id``, ``secret_access_key`` and ``session_token`` (other
        options kept in order), and those credentials by name.
    """
    if not url.startswith("s3:") or "?" not in url:
        return url, {}
    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    credentials = {k: v for k, v in pairs if k in CREDENTIAL_OPTIONS}
    if not credentials:
        return url, {}
    kept = [(k, v) for k, v in pairs if k not in CREDENTIAL_OPTIONS]
    return url.split("?", 1)[0] + ("?" + urlencode(kept, safe=":/") if kept else ""), credentials
