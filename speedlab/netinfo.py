"""Which kind of link carried a test: Ethernet, Wi-Fi on 2.4, 5 or 6 GHz, or ``Unknown``.

Two layers:

* pure parsers, one per tool output (``ip route get``, ``/proc/net/route``, ``iw dev IF
  link``, ``nmcli``, ``iwconfig``, macOS ``route -n get``, ``networksetup
  -listallhardwareports``, ``system_profiler SPAirPortDataType``, ``airport -I``, Windows
  ``ipconfig`` and ``netsh wlan show interfaces``), tested with captured outputs;
* :func:`detect_connection`, the edge that runs those tools (each with a short timeout) and
  reads sysfs. Whatever fails, it answers ``ConnectionInfo("Unknown", None)`` rather than
  raising: a test result must never be lost because the link type could not be named.

The type names are :data:`speedlab.records.CONNECTION_TYPES`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ConnectionInfo", "band_of_frequency", "band_of_channel", "detect_connection",
           "parse_ip_route_get", "parse_proc_net_route", "parse_iw_link", "parse_nmcli_wifi",
           "parse_iwconfig", "parse_macos_route_get", "parse_networksetup_ports",
           "parse_system_profiler_airport", "parse_airport_info", "parse_ipconfig",
           "parse_netsh_wlan", "classify_linux", "local_address_for",
           "WindowsAdapter", "classify_macos", "classify_windows", "run_command", "windows_wifi_band"]

UNKNOWN = "Unknown"
WIFI = "Wi-Fi"


@dataclass(frozen=True)
class ConnectionInfo:
    """The link a test used: ``connection_type`` (a record's value) and the OS ``interface`` name."""

    connection_type: str = UNKNOWN
    interface: str | None = None


# --------------------------------------------------------------------------- bands

def band_of_frequency(mhz: float | None) -> str:
    """``Wi-Fi 2.4GHz`` / ``Wi-Fi 5GHz`` / ``Wi-Fi 6GHz`` for a channel's centre frequency [MHz].

    2.4 GHz is 2400-2500 MHz, 5 GHz 4900-5924 MHz (including the 4.9 GHz public-safety
    band), 6 GHz 5925-7125 MHz (Wi-Fi 6E/7). Anything else is plain ``Wi-Fi``.
    """
    if mhz is None:
        return WIFI
    if 2400 <= mhz < 2500:
        return "Wi-Fi 2.4GHz"
    if 4900 <= mhz < 5925:
        return "Wi-Fi 5GHz"
    if 5925 <= mhz <= 7125:
        return "Wi-Fi 6GHz"
    return WIFI


def band_of_channel(channel: int | None) -> str:
    """The band of a channel number when no frequency is known: 1-14 are 2.4 GHz, 32-177 5 GHz.

    6 GHz channels reuse numbers 1-233, so tools that may report them must give the band or
    the frequency; this is only the fallback for older ones.
    """
    if channel is None:
        return WIFI
    if 1 <= channel <= 14:
        return "Wi-Fi 2.4GHz"
    if 32 <= channel <= 177:
        return "Wi-Fi 5GHz"
    return WIFI


def _band_words(text: str) -> str | None:
    """``2.4 GHz`` / ``2GHz`` / ``5 GHz`` / ``6GHz`` written in a tool's output -> band name."""
    match = re.search(r"\b(2(?:\.4)?|5|6)\s*GHz", text, re.IGNORECASE)
    if not match:
        return None
    return {"2": "Wi-Fi 2.4GHz", "2.4": "Wi-Fi 2.4GHz", "5": "Wi-Fi 5GHz", "6": "Wi-Fi 6GHz"}[match.group(1)]


# --------------------------------------------------------------------------- Linux parsers

def parse_ip_route_get(text: str) -> str | None:
    """The ``dev`` of ``ip route get ADDRESS`` output (``... dev wlan0 src ...``)."""
    match = re.search(r"\bdev\s+(\S+)", text or "")
    return match.group(1) if match else None


def parse_proc_net_route(text: str) -> str | None:
    """The interface of the default route (lowest metric) in ``/proc/net/route``."""
    best: tuple[int, str] | None = None
    for line in (text or "").splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8 or cols[1] != "00000000" or cols[7] != "00000000":
            continue
        try:
            metric = int(cols[6])
        except ValueError:
            continue
        if best is None or metric < best[0]:
            best = (metric, cols[0])
    return best[1] if best else None


def parse_iw_link(text: str) -> float | None:
    """The frequency [MHz] in ``iw dev IF link``; ``None`` when not connected."""
    if not text or "Not connected" in text:
        return None
    match = re.search(r"^\s*freq:\s*([\d.]+)", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def parse_nmcli_wifi(text: str, interface: str | None = None) -> float | None:
    """The active network's frequency [MHz] in ``nmcli -t -f ACTIVE,FREQ,DEVICE dev wifi``.

    Lines look like ``yes:5180 MHz:wlp2s0`` (terse mode); the first active line for
    ``interface`` (any, if ``None``) wins.
    """
    for line in (text or "").splitlines():
        parts = line.strip().split(":")
        if len(parts) < 2 or parts[0].lower() not in ("yes", "*"):
            continue
        if interface and len(parts) >= 3 and parts[2] and parts[2] != interface:
            continue
        match = re.match(r"\s*([\d.]+)", parts[1])
        if match:
            return float(match.group(1))
    return None


def parse_iwconfig(text: str) -> float | None:
    """The frequency [MHz] in ``iwconfig IF`` output (``Frequency:5.18 GHz``)."""
    match = re.search(r"Frequency[:=]\s*([\d.]+)\s*GHz", text or "")
    return float(match.group(1)) * 1000 if match else None


def classify_linux(interface: str | None, *, wireless: bool, arp_type: int | None,
                   frequency_mhz: float | None = None) -> str:
    """The connection type of a Linux interface from sysfs facts.

    ``arp_type`` is ``/sys/class/net/IF/type`` (1 Ethernet, 772 loopback, 512 PPP, 519
    raw IP as cellular modems use, 65534 for tun/WireGuard).
    """
    if not interface:
        return UNKNOWN
    if wireless:
        return band_of_frequency(frequency_mhz)
    name = interface.lower()
    if arp_type == 772 or name == "lo":
        return UNKNOWN
    if name.startswith(("wwan", "rmnet", "ccmni")) or arp_type == 519:
        return "Cellular"
    if name.startswith(("tun", "tap", "wg", "ppp", "ipsec", "utun", "tailscale", "zt")) or arp_type in (512, 65534):
        return "VPN"
    if arp_type == 1:
        return "Ethernet"
    return UNKNOWN


# --------------------------------------------------------------------------- macOS parsers

def parse_macos_route_get(text: str) -> str | None:
    """The ``interface:`` of ``route -n get ADDRESS``."""
    match = re.search(r"^\s*interface:\s*(\S+)", text or "", re.MULTILINE)
    return match.group(1) if match else None


def parse_networksetup_ports(text: str) -> dict[str, str]:
    """``{device: hardware port}`` from ``networksetup -listallhardwareports``."""
    ports: dict[str, str] = {}
    port = None
    for line in (text or "").splitlines():
        if line.startswith("Hardware Port:"):
            port = line.split(":", 1)[1].strip()
        elif line.startswith("Device:") and port:
            ports[line.split(":", 1)[1].strip()] = port
            port = None
    return ports


def parse_system_profiler_airport(text: str, interface: str | None = None) -> str | None:
    """The band of the current network in ``system_profiler SPAirPortDataType``.

    The ``Current Network Information:`` block has ``Channel: 149 (5GHz, 80MHz)``; with
    several interfaces, the block under ``interface`` is used. ``None`` if not connected.
    """
    if not text:
        return None
    blocks = re.split(r"^\s*(en\d+|awdl\d+|llw\d+):\s*$", text, flags=re.MULTILINE)
    candidates = []
    if len(blocks) > 1:
        for name, body in zip(blocks[1::2], blocks[2::2], strict=True):
            if interface is None or name == interface:
                candidates.append(body)
    else:
        candidates.append(text)
    for body in candidates:
        current = body.split("Current Network Information:", 1)
        if len(current) < 2:
            continue
        match = re.search(r"Channel:\s*(\d+)\s*(\(([^)]*)\))?", current[1])
        if not match:
            continue
        band = _band_words(match.group(3) or "")
        return band or band_of_channel(int(match.group(1)))
    return None


def parse_airport_info(text: str) -> str | None:
    """The band from ``airport -I`` (``channel: 149,80``); ``None`` when it shows no network."""
    if not text or "AirPort: Off" in text:
        return None
    match = re.search(r"^\s*channel:\s*(\d+)", text, re.MULTILINE)
    return band_of_channel(int(match.group(1))) if match else None


# --------------------------------------------------------------------------- Windows parsers

@dataclass(frozen=True)
class WindowsAdapter:
    """One adapter block of ``ipconfig``: its ``name``, ``kind`` (``Ethernet``/``Wireless LAN``/...) and IPv4
    addresses."""

    name: str
    kind: str
    addresses: tuple[str, ...]


def parse_ipconfig(text: str) -> list[WindowsAdapter]:
    """The adapters of ``ipconfig`` output (``Wireless LAN adapter Wi-Fi:`` blocks)."""
    adapters: list[WindowsAdapter] = []
    name: str | None = None
    kind = ""  # set with name
    addresses: list[str] = []
    for line in (text or "").splitlines():
        header = re.match(r"^(\S.*?) adapter (.+?):\s*$", line)
        if header:
            if name is not None:
                adapters.append(WindowsAdapter(name, kind, tuple(addresses)))
            kind, name, addresses = header.group(1).strip(), header.group(2).strip(), []
            continue
        if name is not None and "IPv4" in line and ":" in line:
            match = re.search(r":\s*(\d+\.\d+\.\d+\.\d+)", line)
            if match:
                addresses.append(match.group(1))
    if name is not None:
        adapters.append(WindowsAdapter(name, kind, tuple(addresses)))
    return adapters


def parse_netsh_wlan(text: str) -> list[dict[str, str]]:
    """The interface blocks of ``netsh wlan show interfaces`` as ``{lower-case key: value}``."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in (text or "").splitlines():
        match = re.match(r"^\s+([^:]+?)\s+:\s(.*)$", line)
        if not match:
            continue
        key, value = match.group(1).strip().lower(), match.group(2).strip()
        if key == "name" and current:
            blocks.append(current)
            current = {}
        current[key] = value
    if current:
        blocks.append(current)
    return blocks


def windows_wifi_band(block: dict[str, str]) -> str:
    """The band of one ``netsh wlan`` interface block (``Band`` line, else ``Channel``)."""
    band = _band_words(block.get("band", ""))
    if band:
        return band
    try:
        return band_of_channel(int(block.get("channel", "")))
    except ValueError:
        return WIFI


def classify_windows(ipconfig_text: str, netsh_text: str, local_ip: str | None) -> ConnectionInfo:
    """Connection type on Windows from ``ipconfig`` and ``netsh wlan show interfaces`` output."""
    adapters = parse_ipconfig(ipconfig_text)
    adapter = next((a for a in adapters if local_ip and local_ip in a.addresses), None)
    wlan = [b for b in parse_netsh_wlan(netsh_text) if b.get("state", "").lower() == "connected"]
    if adapter is None:
        # Which adapter carried the test is unknown: only a lone connected Wi-Fi is a safe answer.
        connected = [a for a in adapters if a.addresses]
        if len(wlan) == 1 and len(connected) <= 1:
            return ConnectionInfo(windows_wifi_band(wlan[0]), wlan[0].get("name"))
        return ConnectionInfo(UNKNOWN, None)
    if adapter.kind.lower().startswith("wireless"):
        block = next((b for b in wlan if b.get("name") == adapter.name), wlan[0] if len(wlan) == 1 else None)
        return ConnectionInfo(windows_wifi_band(block) if block else WIFI, adapter.name)
    if adapter.kind.lower().startswith("ethernet"):
        lowered = adapter.name.lower()
        if any(word in lowered for word in ("vpn", "tap", "wireguard", "tailscale")):
            return ConnectionInfo("VPN", adapter.name)
        return ConnectionInfo("Ethernet", adapter.name)
    if "mobile" in adapter.kind.lower() or "cellular" in adapter.kind.lower():
        return ConnectionInfo("Cellular", adapter.name)
    if "ppp" in adapter.kind.lower():
        return ConnectionInfo("VPN", adapter.name)
    return ConnectionInfo(UNKNOWN, adapter.name)


def classify_macos(interface: str | None, ports_text: str, profiler_text: str = "",
                   airport_text: str = "") -> ConnectionInfo:
    """Connection type on macOS from ``networksetup`` ports and the Wi-Fi tools' output."""
    if not interface:
        return ConnectionInfo(UNKNOWN, None)
    port = parse_networksetup_ports(ports_text).get(interface, "")
    lowered = port.lower()
    if lowered in ("wi-fi", "airport") or "wi-fi" in lowered:
        band = parse_system_profiler_airport(profiler_text, interface) or parse_airport_info(airport_text)
        return ConnectionInfo(band or WIFI, interface)
    if any(word in lowered for word in ("ethernet", "lan", "thunderbolt bridge")):
        return ConnectionInfo("Ethernet", interface)
    if interface.startswith(("utun", "ppp", "ipsec")):
        return ConnectionInfo("VPN", interface)
    if "iphone" in lowered or "cellular" in lowered:
        return ConnectionInfo("Cellular", interface)
    return ConnectionInfo(UNKNOWN, interface)


# --------------------------------------------------------------------------- the edge (I/O)

Runner = Callable[[Sequence[str]], "str | None"]


def run_command(argv: Sequence[str], timeout_s: float = 3.0) -> str | None:
    """Run a tool and return its standard output, or ``None`` if it is missing, fails or hangs."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s,
                              errors="replace")
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return done.stdout if done.returncode == 0 else None


def local_address_for(host: str | None) -> str | None:
    """The local IPv4 address the OS would use to reach ``host`` (no packet is sent).

    ``host`` may carry a port (``speedtest.example.net:8080``); names are not resolved (no
    DNS look-up): ``None`` is returned for them.
    """
    if not host:
        return None
    address = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        return None
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((address, 9))
            return sock.getsockname()[0]
    except OSError:
        return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _detect_linux(target: str | None, run: Runner, sysfs: Path, proc_route: Path) -> ConnectionInfo:
    interface = parse_ip_route_get(run(["ip", "route", "get", target]) or "") if target else None
    interface = interface or parse_proc_net_route(_read(proc_route) or "")
    if not interface:
        return ConnectionInfo(UNKNOWN, None)
    base = sysfs / interface
    wireless = (base / "wireless").exists() or (base / "phy80211").exists()
    arp_text = (_read(base / "type") or "").strip()
    arp_type = int(arp_text) if arp_text.isdigit() else None
    frequency = None
    if wireless:
        frequency = (parse_iw_link(run(["iw", "dev", interface, "link"]) or "")
                     or parse_nmcli_wifi(run(["nmcli", "-t", "-f", "ACTIVE,FREQ,DEVICE", "dev", "wifi"]) or "",
                                         interface)
                     or parse_iwconfig(run(["iwconfig", interface]) or ""))
    return ConnectionInfo(classify_linux(interface, wireless=wireless, arp_type=arp_type,
                                         frequency_mhz=frequency), interface)


#: A documentation address (TEST-NET-1): asking the OS how it would reach it names the
#: default route's local address without sending anything.
_DEFAULT_ROUTE_PROBE = "192.0.2.1"

_AIRPORT = ("/System/Library/PrivateFrameworks/Apple80211.framework/Versions/Current/"
            "Resources/airport")


def _detect_macos(target: str | None, run: Runner) -> ConnectionInfo:
    interface = parse_macos_route_get(run(["route", "-n", "get", target or "default"]) or "")
    ports = run(["networksetup", "-listallhardwareports"]) or ""
    if parse_networksetup_ports(ports).get(interface or "", "").lower() not in ("wi-fi", "airport"):
        return classify_macos(interface, ports)
    profiler = run(["system_profiler", "SPAirPortDataType"]) or ""
    airport = "" if parse_system_profiler_airport(profiler, interface) else (run([_AIRPORT, "-I"]) or "")
    return classify_macos(interface, ports, profiler, airport)


def detect_connection(target_host: str | None = None, *, system: str | None = None,
                      run: Runner = run_command, sysfs_root: str | Path = "/sys/class/net",
                      proc_route: str | Path = "/proc/net/route") -> ConnectionInfo:
    """Name the link that reaches ``target_host`` (the speed test server's ``host``).

    Parameters
    ----------
    target_host : str, optional
        ``ADDRESS`` or ``ADDRESS:PORT`` of the test server; ``None`` uses the default route.
    system : str, optional
        ``sys.platform`` to act as (tests).
    run : callable
        Runs a command and returns its output or ``None`` (tests pass canned outputs).
    sysfs_root, proc_route : path
        Linux's ``/sys/class/net`` and ``/proc/net/route`` (tests pass fake trees).

    Returns
    -------
    ConnectionInfo
        ``Unknown`` when nothing answers; this function never raises.
    """
    system = system or sys.platform
    address = target_host.rsplit(":", 1)[0] if target_host and target_host.count(":") == 1 else target_host
    try:
        ipaddress.IPv4Address(address or "")
    except ValueError:
        address = None  # a host name: use the default route rather than resolve it here
    try:
        if system.startswith("linux"):
            return _detect_linux(address, run, Path(sysfs_root), Path(proc_route))
        if system == "darwin":
            return _detect_macos(address, run)
        if system.startswith("win"):
            return classify_windows(run(["ipconfig"]) or "", run(["netsh", "wlan", "show", "interfaces"]) or "",
                                    local_address_for(address or _DEFAULT_ROUTE_PROBE))
    except Exception:  # noqa: BLE001 - never let link detection cost a measurement
        return ConnectionInfo(UNKNOWN, None)
    return ConnectionInfo(UNKNOWN, None)
