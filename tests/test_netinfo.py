"""Link detection: every platform's parser on captured outputs, and the edge that never raises."""

from __future__ import annotations

import pytest

from speedlab import netinfo
from speedlab.netinfo import (
    ConnectionInfo,
    band_of_channel,
    band_of_frequency,
    classify_linux,
    classify_macos,
    classify_windows,
    detect_connection,
    parse_airport_info,
    parse_ip_route_get,
    parse_ipconfig,
    parse_iw_link,
    parse_iwconfig,
    parse_macos_route_get,
    parse_netsh_wlan,
    parse_networksetup_ports,
    parse_nmcli_wifi,
    parse_proc_net_route,
    parse_system_profiler_airport,
)
from speedlab.records import CONNECTION_TYPES

# ----------------------------------------------------------------------------- captured outputs
IP_ROUTE_GET = "151.101.1.69 via 192.168.1.1 dev wlp2s0 src 192.168.1.31 uid 1000 \n    cache \n"
PROC_NET_ROUTE = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
wlp2s0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
enp3s0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
enp3s0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
"""
IW_LINK_5 = """Connected to 74:ac:b9:12:34:56 (on wlp2s0)
\tSSID: home-net
\tfreq: 5180.0
\tRX: 1234567 bytes (8901 packets)
\tTX: 234567 bytes (1234 packets)
\tsignal: -52 dBm
\trx bitrate: 866.7 MBit/s VHT-MCS 9 80MHz short GI VHT-NSS 2
\ttx bitrate: 780.0 MBit/s VHT-MCS 8 80MHz short GI VHT-NSS 2
"""
IW_LINK_24 = "Connected to 00:11:22:33:44:55 (on wlan0)\n\tSSID: cafe\n\tfreq: 2437\n\tsignal: -67 dBm\n"
IW_LINK_6 = "Connected to 00:11:22:33:44:66 (on wlan0)\n\tSSID: six\n\tfreq: 6135.0\n"
NMCLI = "no:2437 MHz:wlp2s0\nyes:5745 MHz:wlp2s0\nno:5180 MHz:wlp2s0\n"
IWCONFIG = ('wlan0     IEEE 802.11  ESSID:"home-net"  \n'
            '          Mode:Managed  Frequency:2.412 GHz  Access Point: 00:11:22:33:44:55   \n')

MAC_ROUTE_GET = """   route to: 151.101.1.69
destination: default
       mask: default
    gateway: 192.168.1.1
  interface: en0
      flags: <UP,GATEWAY,DONE,STATIC,PRCLONING>
"""
NETWORKSETUP = """
Hardware Port: Ethernet
Device: en5
Ethernet Address: a0:ce:c8:00:00:01

Hardware Port: Wi-Fi
Device: en0
Ethernet Address: 3c:22:fb:00:00:02

Hardware Port: Thunderbolt Bridge
Device: bridge0
Ethernet Address: N/A

VLAN Configurations
===================
"""
SYSTEM_PROFILER = """Wi-Fi:

      Software Versions:
          CoreWLAN: 16.0 (1657)
      Interfaces:
        en0:
          Card Type: Wi-Fi  (0x14E4, 0x4387)
          Status: Connected
          Current Network Information:
            home-net:
              PHY Mode: 802.11ax
              Channel: 149 (5GHz, 80MHz)
              Country Code: IN
              Signal / Noise: -48 dBm / -94 dBm
          Other Local Wi-Fi Networks:
            neighbour:
              Channel: 6 (2GHz, 20MHz)
        awdl0:
          Status: Connected
"""
SYSTEM_PROFILER_6E = SYSTEM_PROFILER.replace("Channel: 149 (5GHz, 80MHz)", "Channel: 37 (6GHz, 160MHz)")
AIRPORT_I = """     agrCtlRSSI: -55
     agrExtRSSI: 0
          state: running
        op mode: station
     lastTxRate: 144
        maxRate: 144
           SSID: cafe
        channel: 11
"""

IPCONFIG = """
Windows IP Configuration


Ethernet adapter Ethernet:

   Connection-specific DNS Suffix  . : home
   Link-local IPv6 Address . . . . . : fe80::1c2b:3a4d:5e6f:7081%12
   IPv4 Address. . . . . . . . . . . : 192.168.1.20
   Subnet Mask . . . . . . . . . . . : 255.255.255.0
   Default Gateway . . . . . . . . . : 192.168.1.1

Wireless LAN adapter Wi-Fi:

   Connection-specific DNS Suffix  . : home
   IPv4 Address. . . . . . . . . . . : 192.168.1.31(Preferred)
   Subnet Mask . . . . . . . . . . . : 255.255.255.0
   Default Gateway . . . . . . . . . : 192.168.1.1

Ethernet adapter Bluetooth Network Connection:

   Media State . . . . . . . . . . . : Media disconnected
"""
NETSH = """
There is 1 interface on the system:

    Name                   : Wi-Fi
    Description            : Intel(R) Wi-Fi 6 AX201 160MHz
    GUID                   : 0b6e5ab3-8b0b-4a7f-9e71-6c1f2a1a2b3c
    Physical address       : 8c:c6:81:00:00:03
    Interface type         : Primary
    State                  : connected
    SSID                   : home-net
    BSSID                  : 74:ac:b9:12:34:56
    Network type           : Infrastructure
    Radio type             : 802.11ax
    Authentication         : WPA2-Personal
    Cipher                 : CCMP
    Connection mode        : Auto Connect
    Band                   : 5 GHz
    Channel                : 44
    Receive rate (Mbps)    : 1201
    Transmit rate (Mbps)   : 1201
    Signal                 : 96%
    Profile                : home-net

    Hosted network status  : Not available
"""
NETSH_OLD_24 = NETSH.replace("    Band                   : 5 GHz\n", "").replace(
    "Channel                : 44", "Channel                : 6")
NETSH_6 = NETSH.replace("Band                   : 5 GHz", "Band                   : 6 GHz")


# ----------------------------------------------------------------------------- bands
@pytest.mark.parametrize("mhz, band", [
    (2412, "Wi-Fi 2.4GHz"), (2484, "Wi-Fi 2.4GHz"), (4940, "Wi-Fi 5GHz"), (5180, "Wi-Fi 5GHz"),
    (5885, "Wi-Fi 5GHz"), (5955, "Wi-Fi 6GHz"), (7115, "Wi-Fi 6GHz"), (60480, "Wi-Fi"), (None, "Wi-Fi"),
])
def test_band_of_frequency(mhz, band):
    assert band_of_frequency(mhz) == band
    assert band in CONNECTION_TYPES


def test_band_of_channel():
    assert [band_of_channel(c) for c in (1, 14, 36, 165, 200, None)] == [
        "Wi-Fi 2.4GHz", "Wi-Fi 2.4GHz", "Wi-Fi 5GHz", "Wi-Fi 5GHz", "Wi-Fi", "Wi-Fi"]


# ----------------------------------------------------------------------------- Linux
def test_linux_parsers():
    assert parse_ip_route_get(IP_ROUTE_GET) == "wlp2s0"
    assert parse_ip_route_get("RTNETLINK answers: Network is unreachable") is None
    assert parse_proc_net_route(PROC_NET_ROUTE) == "enp3s0"  # lowest metric wins
    assert parse_proc_net_route("Iface\tDestination\n") is None
    assert parse_iw_link(IW_LINK_5) == 5180.0
    assert parse_iw_link(IW_LINK_24) == 2437.0
    assert parse_iw_link("Not connected.") is None
    assert parse_nmcli_wifi(NMCLI, "wlp2s0") == 5745.0
    assert parse_nmcli_wifi(NMCLI, "wlan1") is None
    assert parse_iwconfig(IWCONFIG) == pytest.approx(2412.0)


@pytest.mark.parametrize("name, wireless, arp, freq, expected", [
    ("enp3s0", False, 1, None, "Ethernet"), ("wlp2s0", True, 1, 5180, "Wi-Fi 5GHz"),
    ("wlan0", True, 1, 6135, "Wi-Fi 6GHz"), ("wlan0", True, 1, None, "Wi-Fi"),
    ("lo", False, 772, None, "Unknown"), ("wg0", False, 65534, None, "VPN"),
    ("tun0", False, 65534, None, "VPN"), ("wwan0", False, 519, None, "Cellular"),
    ("ppp0", False, 512, None, "VPN"), (None, False, None, None, "Unknown"),
    ("sit0", False, 776, None, "Unknown"),
])
def test_classify_linux(name, wireless, arp, freq, expected):
    assert classify_linux(name, wireless=wireless, arp_type=arp, frequency_mhz=freq) == expected


def fake_sysfs(tmp_path, interfaces):
    root = tmp_path / "net"
    for name, (arp, wireless) in interfaces.items():
        (root / name).mkdir(parents=True)
        (root / name / "type").write_text(f"{arp}\n")
        if wireless:
            (root / name / "wireless").mkdir()
    return root


def canned(outputs):
    calls = []

    def run(argv):
        calls.append(list(argv))
        return outputs.get(argv[0])
    run.calls = calls
    return run


def test_detect_linux_wifi_through_iw(tmp_path):
    sysfs = fake_sysfs(tmp_path, {"wlp2s0": (1, True), "enp3s0": (1, False)})
    run = canned({"ip": IP_ROUTE_GET, "iw": IW_LINK_5})
    info = detect_connection("151.101.1.69:8080", system="linux", run=run, sysfs_root=sysfs,
                             proc_route=tmp_path / "none")
    assert info == ConnectionInfo("Wi-Fi 5GHz", "wlp2s0")
    assert run.calls[0] == ["ip", "route", "get", "151.101.1.69"]


def test_detect_linux_falls_back_to_nmcli_then_default_route(tmp_path):
    sysfs = fake_sysfs(tmp_path, {"wlp2s0": (1, True), "enp3s0": (1, False)})
    (tmp_path / "route").write_text(PROC_NET_ROUTE.replace("\t100\t", "\t900\t"))
    info = detect_connection(None, system="linux", run=canned({"nmcli": NMCLI}), sysfs_root=sysfs,
                             proc_route=tmp_path / "route")
    assert info == ConnectionInfo("Wi-Fi 5GHz", "wlp2s0")
    info = detect_connection("speedtest.example.net:8080", system="linux", run=canned({}),
                             sysfs_root=sysfs, proc_route=tmp_path / "none")
    assert info == ConnectionInfo("Unknown", None)


def test_detect_linux_ethernet(tmp_path):
    sysfs = fake_sysfs(tmp_path, {"enp3s0": (1, False)})
    (tmp_path / "route").write_text(PROC_NET_ROUTE)
    info = detect_connection(None, system="linux", run=canned({}), sysfs_root=sysfs,
                             proc_route=tmp_path / "route")
    assert info == ConnectionInfo("Ethernet", "enp3s0")


def test_loopback_is_unknown_with_this_machines_sysfs():
    run = canned({"ip": "local 127.0.0.1 dev lo table local src 127.0.0.1 uid 0 \n    cache <local> \n"})
    assert detect_connection("127.0.0.1:8080", system="linux", run=run) == ConnectionInfo("Unknown", "lo")
    assert run.calls == [["ip", "route", "get", "127.0.0.1"]]


# ----------------------------------------------------------------------------- macOS
def test_macos_parsers():
    assert parse_macos_route_get(MAC_ROUTE_GET) == "en0"
    assert parse_networksetup_ports(NETWORKSETUP) == {"en5": "Ethernet", "en0": "Wi-Fi",
                                                      "bridge0": "Thunderbolt Bridge"}
    assert parse_system_profiler_airport(SYSTEM_PROFILER, "en0") == "Wi-Fi 5GHz"
    assert parse_system_profiler_airport(SYSTEM_PROFILER_6E) == "Wi-Fi 6GHz"
    assert parse_system_profiler_airport("Wi-Fi:\n  Interfaces:\n    en0:\n      Status: Off\n") is None
    assert parse_airport_info(AIRPORT_I) == "Wi-Fi 2.4GHz"
    assert parse_airport_info("AirPort: Off") is None


def test_classify_macos():
    assert classify_macos("en0", NETWORKSETUP, SYSTEM_PROFILER) == ConnectionInfo("Wi-Fi 5GHz", "en0")
    assert classify_macos("en0", NETWORKSETUP, "", AIRPORT_I) == ConnectionInfo("Wi-Fi 2.4GHz", "en0")
    assert classify_macos("en0", NETWORKSETUP) == ConnectionInfo("Wi-Fi", "en0")
    assert classify_macos("en5", NETWORKSETUP) == ConnectionInfo("Ethernet", "en5")
    assert classify_macos("utun3", NETWORKSETUP) == ConnectionInfo("VPN", "utun3")
    assert classify_macos(None, NETWORKSETUP) == ConnectionInfo("Unknown", None)


def test_detect_macos():
    run = canned({"route": MAC_ROUTE_GET, "networksetup": NETWORKSETUP,
                  "system_profiler": SYSTEM_PROFILER})
    assert detect_connection("151.101.1.69", system="darwin", run=run) == ConnectionInfo("Wi-Fi 5GHz", "en0")


# ----------------------------------------------------------------------------- Windows
def test_windows_parsers():
    adapters = parse_ipconfig(IPCONFIG)
    assert [(a.kind, a.name, a.addresses) for a in adapters] == [
        ("Ethernet", "Ethernet", ("192.168.1.20",)), ("Wireless LAN", "Wi-Fi", ("192.168.1.31",)),
        ("Ethernet", "Bluetooth Network Connection", ())]
    block = parse_netsh_wlan(NETSH)[0]
    assert block["name"] == "Wi-Fi" and block["state"] == "connected" and block["band"] == "5 GHz"
    assert block["receive rate (mbps)"] == "1201"


@pytest.mark.parametrize("local_ip, netsh, expected", [
    ("192.168.1.31", NETSH, ConnectionInfo("Wi-Fi 5GHz", "Wi-Fi")),
    ("192.168.1.31", NETSH_OLD_24, ConnectionInfo("Wi-Fi 2.4GHz", "Wi-Fi")),
    ("192.168.1.31", NETSH_6, ConnectionInfo("Wi-Fi 6GHz", "Wi-Fi")),
    ("192.168.1.20", NETSH, ConnectionInfo("Ethernet", "Ethernet")),
    ("10.9.9.9", NETSH, ConnectionInfo("Unknown", None)),  # two adapters up, neither matches
    (None, "", ConnectionInfo("Unknown", None)),
])
def test_classify_windows(local_ip, netsh, expected):
    assert classify_windows(IPCONFIG, netsh, local_ip) == expected


def test_detect_windows_uses_both_tools(monkeypatch):
    monkeypatch.setattr(netinfo, "local_address_for", lambda host: "192.168.1.31")
    run = canned({"ipconfig": IPCONFIG, "netsh": NETSH})
    assert detect_connection("151.101.1.69:8080", system="win32", run=run) == ConnectionInfo("Wi-Fi 5GHz", "Wi-Fi")
    assert [c[0] for c in run.calls] == ["ipconfig", "netsh"]


# ----------------------------------------------------------------------------- never a crash
@pytest.mark.parametrize("system", ["linux", "darwin", "win32", "sunos5"])
def test_nothing_answers_means_unknown(system, tmp_path):
    info = detect_connection("151.101.1.69", system=system, run=lambda argv: None,
                             sysfs_root=tmp_path / "none", proc_route=tmp_path / "none")
    assert info.connection_type == "Unknown"


def test_a_broken_tool_is_not_a_crash(tmp_path):
    def explode(argv):
        raise RuntimeError("tool exploded")
    assert detect_connection("151.101.1.69", system="darwin", run=explode) == ConnectionInfo("Unknown", None)
    assert netinfo.run_command(["/nonexistent/tool"]) is None
