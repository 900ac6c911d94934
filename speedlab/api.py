"""The HTTP JSON API beside the dashboard: the seed's Lambda function URLs, in the Voilà server.

Routes (all answers are JSON; errors are ``{"error": "...", "status": N}``)
--------------------------------------------------------------------------
``GET /api/dashboard?mode=&days=&host=&force_refresh=&now=``
    The dashboard's rows (:func:`speedlab.query.rows`, the same function as the dashboard
    and ``speedlab query``): the seed's "Dashboard API response", a JSON array.
``GET /api/coverage?date=&host=&now=``
    The seed's hourly checker (:func:`speedlab.coverage.coverage`, as ``speedlab coverage --json``).
``GET /api/latest?period=&last=&host=``
    The newest entries of a tier (:func:`speedlab.latest.latest`, as ``speedlab latest --json``).
``POST /api/aggregate?mode=&period=&host=``
    The manual trigger: roll one period up now and answer ``{"message": "ok", "mode": …,
    "result": …}`` (:func:`speedlab.rollup.aggregate` in :func:`speedlab.adapter.envelope`, as
    ``speedlab aggregate``).
``GET /api/metrics`` (also ``GET /metrics``)
    Prometheus' text exposition format, not JSON: each host's newest result, test counts and
    today's percentiles (:mod:`speedlab.metrics_io`; names in ``docs/metrics.md``). Prometheus
    sends the token as ``authorization: credentials:`` (or ``bearer_token``) in its scrape config.
``GET /api/openapi.json``
    An OpenAPI 3.0 description of the above.

Authentication: ``Authorization: token T`` (or ``Bearer T``) or ``?token=T``. The token is
``[api] token`` (or ``$SPEEDLAB_API_TOKEN``; at least :data:`~speedlab.settings.MIN_TOKEN_CHARS` characters), else
Voilà's own token if it has one, else one generated at start-up and printed once. Routes named in
``[api] public`` answer without it (read-only routes only: ``dashboard``, ``coverage``, ``latest``, ``openapi``)::

    [api]
    token = "a-long-random-string"          # masked by `speedlab config show`
    public = ["dashboard", "openapi"]       # opened read-only on purpose; default none

Invalid parameters (an unknown mode, a bad date, a date outside 1970-9998, a period that has
not started, an empty value such as ``host=``, an unknown parameter name) answer 400 with the
reason; a store that cannot be reached answers 503; a bug answers 500 *as JSON* and is written
to the ``api`` job log.

How it is served. Voilà 0.5 run standalone has no extension mechanism for extra tornado
handlers (voila-dashboards/voila#495), so ``python -m speedlab.api NOTEBOOK [voila options]``
runs :class:`Voila` subclassed to put these handlers in front of Voilà's own (its catch-all
notebook route comes last): one process, one port, one tornado application. ``speedlab
dashboard --api`` starts it that way. :func:`handle` is the whole API without any web framework
(tests and other servers can call it); :func:`make_app` wraps it in a plain tornado
application for embedding.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import (
    ApiError,
    BucketNotFound,
    CredentialsRefused,
    ObjectNotFound,
    SpeedlabError,
    StoreUnavailable,
)
from .settings import check_token_length

__all__ = ["ROUTES", "ApiContext", "ApiError", "TextBody", "api_context", "handle",
           "openapi_document", "api_handlers", "make_app", "main",
           "check_token", "log_request"]

#: path -> (method, route name)
ROUTES = {
    "/api/dashboard": ("GET", "dashboard"),
    "/api/coverage": ("GET", "coverage"),
    "/api/latest": ("GET", "latest"),
    "/api/aggregate": ("POST", "aggregate"),
    "/api/metrics": ("GET", "metrics"),
    "/api/openapi.json": ("GET", "openapi"),
}

#: route -> the query parameters it takes (``token`` is always allowed).
PARAMETERS = {
    "dashboard": ("mode", "days", "host", "force_refresh", "now"),
    "coverage": ("date", "host", "now"),
    "latest": ("period", "last", "host"),
    "aggregate": ("mode", "period", "host"),
    "metrics": (),
    "openapi": (),
}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


# =========================================================================== context

@dataclass
class ApiContext:
    """What every request needs: configuration, store, token, open routes, pinned clock.

    Attributes
    ----------
    config : Config
    token : str
        The token requests must present (never empty).
    public : frozenset of str
        Read-only routes that answer without the token.
    now : datetime or None
        A pinned clock (``speedlab dashboard --now``); ``None`` is the live clock.
    token_generated : bool
        True when no token was configured and one was made up at start-up.
    """

    config: Any
    token: str
    public: frozenset = frozenset()
    now: datetime | None = None
    token_generated: bool = False
    store: Any = None
    log: Any = None
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="speedlab-api"))
    aggregate_lock: threading.Lock = field(default_factory=threading.Lock)
    #: The ``/metrics`` registry (:func:`speedlab.metrics_io.metrics_registry`), made on the first scrape.
    metrics: Any = None

    def __post_init__(self) -> None:
        if self.store is None:
            self.store = self.config.open_store()


def api_context(config, *, fallback_token: str | None = None, now: datetime | None = None,
                env: Mapping[str, str] | None = None, store=None, log=None) -> ApiContext:
    """Build the context from ``config``'s ``[api]`` table.

    Parameters
    ----------
    fallback_token : str, optional
        Voilà's own token, used when ``[api] token`` and ``$SPEEDLAB_API_TOKEN`` are unset.

    Raises
    ------
    ConfigError
        For a ``$SPEEDLAB_API_TOKEN`` shorter than :data:`~speedlab.settings.MIN_TOKEN_CHARS` (the
        ``[api]`` table itself is checked at load: :class:`speedlab.settings.ApiSettings`).
    """
    env = os.environ if env is None else env
    settings = config.api
    token = settings.token or env.get("SPEEDLAB_API_TOKEN") or fallback_token or ""
    if not settings.token and env.get("SPEEDLAB_API_TOKEN"):
        check_token_length(token, "$SPEEDLAB_API_TOKEN")
    generated = not token
    if generated:
        token = secrets.token_urlsafe(24)
    if log is None:
        from .joblog import JobLog
        log = JobLog.for_config(config, "api")
    return ApiContext(config, token, frozenset(settings.public), now, generated, store, log)


# =========================================================================== the API, framework-free

def _presented_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, value = auth.strip().partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return query.get("token")


def check_token(ctx: ApiContext, route: str, headers: Mapping[str, str], query: Mapping[str, str]) -> None:
    """Raise a 401 :class:`ApiError` unless ``route`` is public or the right token is presented."""
    if route in ctx.public:
        return
    presented = _presented_token(headers, query)
    if presented is None or not hmac.compare_digest(presented.encode(), ctx.token.encode()):
        raise ApiError(401, "a valid token is required: send 'Authorization: token <TOKEN>' or ?token=<TOKEN> "
                            "([api] token in speedlab.toml)", {"WWW-Authenticate": 'token realm="speedlab"'})


def _flag(name: str, value: str | None) -> bool:
    if value is None or value.lower() in _FALSE:
        return False
    if value.lower() in _TRUE:
        return True
    raise ApiError(400, f"{name}={value!r} must be 1/true or 0/false")


def _whole(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, f"{name}={value!r} is not a whole number") from None


def _now(ctx: ApiContext, value: str | None) -> datetime | None:
    from .rowbuild import parse_now
    return parse_now(value) if value else ctx.now


def _route_dashboard(ctx: ApiContext, q: Mapping[str, str]):
    from .query import rows
    from .rowbuild import DEFAULT_DAYS, check_query
    mode = q.get("mode", "daily")
    days_text = q.get("days")
    mode, days, host = check_query(mode, days_text if days_text is not None
                                   else DEFAULT_DAYS.get(mode.strip().lower(), 7), q.get("host"))
    return rows(mode, days, host, store=ctx.store, config=ctx.config,
                force_refresh=_flag("force_refresh", q.get("force_refresh")), now=_now(ctx, q.get("now")))


def _route_coverage(ctx: ApiContext, q: Mapping[str, str]):
    from .coverage import coverage
    return coverage(ctx.config, q.get("date", "yesterday"), q.get("host") or None,
                    now=_now(ctx, q.get("now")), store=ctx.store)


def _route_latest(ctx: ApiContext, q: Mapping[str, str]):
    from .latest import latest
    entries = latest(ctx.config, q.get("period", "latest"), _whole("last", q.get("last")),
                     q.get("host") or None, store=ctx.store, now=ctx.now)
    return entries.to_dict()


def _route_aggregate(ctx: ApiContext, q: Mapping[str, str]):
    from .adapter import envelope
    from .rollup import aggregate
    if not q.get("mode"):
        raise ApiError(400, "mode is required: hourly, daily, weekly, monthly or yearly")
    with ctx.aggregate_lock:  # one rollup at a time: they write the same summaries
        report = aggregate(ctx.config, q["mode"], q.get("period") or None, q.get("host") or None,
                           now=ctx.now, store=ctx.store)
    ctx.log.info(f"manual aggregate {q['mode']} {report.summary.period}", mode=q["mode"],
                 period=report.summary.period)
    return envelope(report, q["mode"])


@dataclass(frozen=True)
class TextBody:
    """A route's answer that is not JSON: the ``text`` and its ``content_type``."""

    text: str
    content_type: str


_METRICS_LOCK = threading.Lock()


def _route_metrics(ctx: ApiContext, q: Mapping[str, str]) -> TextBody:
    from .metrics_io import metrics_registry, render
    with _METRICS_LOCK:  # one registry per context: its counters' high-water marks live there
        if ctx.metrics is None:
            ctx.metrics = metrics_registry(ctx.config, ctx.store, now=ctx.now, log=ctx.log)
    return TextBody(*render(ctx.metrics))


_HANDLERS = {"dashboard": _route_dashboard, "coverage": _route_coverage, "latest": _route_latest,
             "aggregate": _route_aggregate, "metrics": _route_metrics,
             "openapi": lambda ctx, q: openapi_document(ctx.public)}


def _status_of(exc: SpeedlabError) -> int:
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, (StoreUnavailable, BucketNotFound, CredentialsRefused)):
        return 503
    if isinstance(exc, ObjectNotFound):
        return 404
    return 400  # every other speedlab error is about the request: its message says what to change


def handle(ctx: ApiContext, method: str, path: str, query: Mapping[str, Any],
           headers: Mapping[str, str]) -> tuple[int, Any, dict]:
    """Answer one request: ``(status, JSON-able body, extra headers)``. Never raises.

    ``/api/metrics`` answers a :class:`TextBody` instead of a JSON-able body.

    ``query`` maps names to a value or a list of values (the last one counts).
    """
    q = {k: (v[-1] if isinstance(v, (list, tuple)) else v) for k, v in query.items()}
    q = {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)) for k, v in q.items()}
    path = path.rstrip("/") or "/"
    try:
        if path not in ROUTES:
            raise ApiError(404, f"no route {path}: see /api/openapi.json")
        allowed, route = ROUTES[path]
        if method.upper() != allowed:
            raise ApiError(405, f"{path} takes {allowed}", {"Allow": allowed})
        check_token(ctx, route, headers, q)
        unknown = sorted(set(q) - set(PARAMETERS[route]) - {"token"})
        if unknown:
            raise ApiError(400, f"unknown parameter(s) {', '.join(unknown)} for {path}; known: "
                                f"{', '.join(PARAMETERS[route]) or 'none'}")
        empty = sorted(k for k, v in q.items() if k != "token" and not v.strip())
        if empty:  # host= meant every host, period= the previous period: say so instead
            raise ApiError(400, f"empty parameter(s) {', '.join(empty)}: give a value, or leave the "
                                "parameter out for its default")
        return 200, _HANDLERS[route](ctx, q), {}
    except SpeedlabError as exc:
        status = _status_of(exc)
        if status >= 500:
            ctx.log.warning(f"{method} {path}: {exc}", status=status)
        return status, {"error": str(exc), "status": status}, getattr(exc, "headers", {})
    except Exception as exc:  # a bug: still JSON, and logged
        ctx.log.error(f"{method} {path} failed: {type(exc).__name__}: {exc}", status=500)
        return 500, {"error": f"internal error ({type(exc).__name__}); see the api job log", "status": 500}, {}


# =========================================================================== OpenAPI

def _param(name: str, description: str, schema: dict, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def openapi_document(public: frozenset | set = frozenset()) -> dict:
    """The OpenAPI 3.0 description of the routes (pure); public routes need no token."""
    from .latest import PERIODS
    from .periods import TIERS
    from .rowbuild import MODES
    host = _param("host", "a host id, or 'all' / absent for every host", {"type": "string"})
    now = _param("now", "pretend it is this moment (ISO 8601 with offset)", {"type": "string", "format": "date-time"})
    error = {"description": "invalid parameters, with the reason",
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    ops = {
        "dashboard": ("get", "The dashboard's rows, oldest first (the seed's Dashboard API response)",
                      [_param("mode", "granularity", {"type": "string", "enum": list(MODES), "default": "daily"}),
                       _param("days", "how many days/weeks/months/years", {"type": "integer", "minimum": 1}),
                       host, _param("force_refresh", "bypass the 2-minute cache", {"type": "boolean"}), now],
                      {"type": "array", "items": {"type": "object"}}),
        "coverage": ("get", "Hour-by-hour test coverage of one day (the seed's hourly checker)",
                     [_param("date", "YYYY-MM-DD, today or yesterday", {"type": "string", "default": "yesterday"}),
                      host, now], {"type": "object"}),
        "latest": ("get", "The newest results or summaries of one tier",
                   [_param("period", "which tier", {"type": "string", "enum": list(PERIODS), "default": "latest"}),
                    _param("last", "how many entries", {"type": "integer", "minimum": 1}), host],
                   {"type": "array", "items": {"type": "object"}}),
        "aggregate": ("post", "Roll one period up now (the seed's manual trigger)",
                      [_param("mode", "the tier", {"type": "string", "enum": list(TIERS)}, required=True),
                       _param("period", "the period label (default: the previous complete period)",
                              {"type": "string"}), host],
                      {"type": "object", "properties": {"message": {"type": "string"}, "mode": {"type": "string"},
                                                        "result": {"type": "object"}}}),
        "metrics": ("get", "Prometheus metrics (text exposition format; also at /metrics)", [],
                    {"type": "string"}),
        "openapi": ("get", "This document", [], {"type": "object"}),
    }
    paths = {}
    for path, (_, route) in ROUTES.items():
        method, summary, params, schema = ops[route]
        kind = "text/plain" if route == "metrics" else "application/json"
        responses = {"200": {"description": "OK", "content": {kind: {"schema": schema}}},
                     "400": error, "503": {"description": "the store cannot be reached"}}
        if route not in public:
            responses["401"] = {"description": "missing or wrong token"}
        paths[path] = {method: {"operationId": route, "summary": summary, "parameters": params,
                                "responses": responses,
                                "security": [] if route in public else [{"tokenHeader": []}, {"tokenQuery": []}]}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "speedlab API", "version": _version(),
                 "description": "Internet speed results and summaries; see speedlab/api.py"},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "tokenHeader": {"type": "apiKey", "in": "header", "name": "Authorization",
                                "description": "'token <TOKEN>' or 'Bearer <TOKEN>'"},
                "tokenQuery": {"type": "apiKey", "in": "query", "name": "token"}},
            "schemas": {"Error": {"type": "object", "required": ["error", "status"],
                                  "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}}}},
    }


def _version() -> str:
    from . import __version__
    return __version__


# =========================================================================== tornado

def _handler_class():
    import tornado.web
    from tornado.ioloop import IOLoop

    class ApiHandler(tornado.web.RequestHandler):
        """A thin adapter: tornado request -> :func:`handle` (in a worker thread) -> JSON."""

        def initialize(self, ctx: ApiContext) -> None:
            self.ctx = ctx

        def check_xsrf_cookie(self) -> None:  # token auth, no cookies: XSRF does not apply
            return None

        async def _answer(self, name: str) -> None:
            query = {k: [v.decode("utf-8", "replace") for v in vs]
                     for k, vs in self.request.query_arguments.items()}
            status, body, headers = await IOLoop.current().run_in_executor(
                self.ctx.executor, handle, self.ctx, self.request.method, f"/api/{name}", query,
                dict(self.request.headers))
            self.set_status(status)
            for name, value in headers.items():
                self.set_header(name, value)
            self.set_header("Cache-Control", "no-store")
            if isinstance(body, TextBody):
                self.set_header("Content-Type", body.content_type)
                self.finish(body.text)
                return
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json.dumps(body, default=str))

        async def get(self, name: str) -> None:
            await self._answer(name)

        async def post(self, name: str) -> None:
            await self._answer(name)

        async def put(self, name: str) -> None:
            await self._answer(name)

        async def delete(self, name: str) -> None:
            await self._answer(name)

    return ApiHandler


def log_request(handler) -> None:
    """tornado's access log line (``404 GET /api/x?token=**** (127.0.0.1) 1.20ms``), with the
    URL masked by :func:`speedlab.masking.mask_secrets`: a ``?token=`` must not reach the log.
    Used as the application's ``log_function`` (the API's, and Voilà's in :func:`main`)."""
    from tornado.log import access_log

    from .masking import mask_secrets
    status = handler.get_status()
    method = access_log.info if status < 400 else access_log.warning if status < 500 else access_log.error
    request = handler.request
    method("%d %s %s (%s) %.2fms", status, request.method, mask_secrets(request.uri or ""),
           request.remote_ip, 1000.0 * request.request_time())


def api_handlers(ctx: ApiContext, base_url: str = "/") -> list[tuple]:
    """Tornado URL rules for the API (put them before any catch-all rule); ``/metrics`` is
    ``/api/metrics`` where Prometheus looks by default."""
    prefix = base_url.rstrip("/")
    handler = _handler_class()
    return [(prefix + r"/api/(dashboard|coverage|latest|aggregate|metrics|openapi\.json)/?", handler, {"ctx": ctx}),
            (prefix + r"/(metrics)/?", handler, {"ctx": ctx})]


def make_app(ctx: ApiContext):
    """A tornado application serving only the API (to embed, or to test without Voilà)."""
    import tornado.web
    return tornado.web.Application(api_handlers(ctx), log_function=log_request)


def _voila_class():
    from voila.app import Voila

    class SpeedlabVoila(Voila):
        """Voilà with speedlab's API routes in front of its own (see the module docstring)."""

        name = "speedlab-voila"

        def init_settings(self) -> dict:
            return {**super().init_settings(), "log_function": log_request}  # ?token= masked

        def init_handlers(self) -> list:
            from .config import load_config
            from .rowbuild import parse_now
            config = load_config()
            voila_token = getattr(getattr(self, "identity_provider", None), "token", None) or None
            ctx = api_context(config, fallback_token=voila_token,
                              now=parse_now(os.environ.get("SPEEDLAB_DASHBOARD_NOW") or None))
            where = f"http://{self.ip}:{self.port}{self.server_url.rstrip('/')}/api/"
            shown = ctx.token if ctx.token_generated else "from [api] token / $SPEEDLAB_API_TOKEN / Voila's token"
            print(f"speedlab api: {where} (token: {shown}; open without it: "
                  f"{', '.join(sorted(ctx.public)) or 'none'})", file=sys.stderr, flush=True)
            ctx.log.start("api serving", url=where, public=sorted(ctx.public))
            return api_handlers(ctx, self.server_url) + super().init_handlers()

    return SpeedlabVoila


def main(argv: list[str] | None = None) -> None:
    """``python -m speedlab.api NOTEBOOK [Voilà options]``: Voilà plus the API, one server."""
    _voila_class().launch_instance(argv)


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in the tests
    main()
