"""The speed test engines by name: ``[collector] engine`` / ``speedlab collect --engine NAME``.

:data:`ENGINES` is plain data, name -> factory (``factory(settings) -> engine``); :func:`make_engine`
turns a name into an engine. Every engine is one interface: a callable returning speedtest-cli's
``results.dict()`` shape (``download``/``upload`` [bit/s], ``ping`` [ms], ``server``, ``client``,
``bytes_sent``/``bytes_received``, and a ``probes`` entry with the record's latency fields under
their record names when the engine measures them), raising :class:`~speedlab.errors.EngineFailure` when the test cannot
run, with a ``name`` (the record's ``engine``) and ``cancel()``. :func:`speedlab.engine.measure`
runs any of them.

* ``speedtest-cli`` — :class:`speedlab.engine.SpeedtestCli` (speedtest-cli's Python API; the default);
* ``ookla`` — :class:`speedlab.engine_ookla.OoklaCli` (the official Speedtest CLI on ``PATH``);
* ``librespeed`` — :class:`speedlab.engine_librespeed.LibreSpeed` (the LibreSpeed protocol against
  ``[collector] librespeed_url``).

The names a config may use are :data:`speedlab.settings.ENGINE_NAMES` (checked at config load;
settings are pure and cannot import the engines), kept equal to :data:`ENGINES` by the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .engine import SpeedtestCli
from .engine_librespeed import LibreSpeed
from .engine_ookla import OoklaCli
from .errors import ConfigError
from .settings import CollectorSettings

__all__ = ["ENGINES", "make_engine"]


def _speedtest_cli(settings: CollectorSettings) -> SpeedtestCli:
    return SpeedtestCli(settings.secure, settings.servers, settings.timeout_s)


def _ookla(settings: CollectorSettings) -> OoklaCli:
    return OoklaCli(settings.servers[0] if settings.servers else None, settings.max_test_s)


def _librespeed(settings: CollectorSettings) -> LibreSpeed:
    return LibreSpeed(settings.librespeed_url, settings.timeout_s)


#: name -> ``factory(settings) -> engine`` (the record's ``engine`` is the engine's ``name``).
ENGINES: dict[str, Callable[[CollectorSettings], Any]] = {"speedtest-cli": _speedtest_cli, "ookla": _ookla,
                                                          "librespeed": _librespeed}


def make_engine(settings: CollectorSettings, name: str | None = None) -> Any:
    """The engine ``name`` (default ``settings.engine``) set up from the ``[collector]`` settings.

    Raises
    ------
    ConfigError
        For a name that is not in :data:`ENGINES` (the message names the known ones).
    """
    name = settings.engine if name is None else name
    factory = ENGINES.get(name)
    if factory is None:
        raise ConfigError(f"unknown speed test engine {name!r}: use one of {', '.join(ENGINES)}")
    return factory(settings)
