"""The LAN signaling port serves IPv4 and IPv6 alike (issue 10, section 1).

With the default ``--port 0`` and no ``--interface`` the node listens on every address;
``status`` (and the mDNS advert) carry one port, so both families must be on it. The
other host reaches that port over IPv4 alone, then over IPv6 alone (link-local, the
only IPv6 on a LAN without a router); on a LAN without IPv6 the node still starts
and serves IPv4.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.lan.chat_nodes import ChatNode
from tests.lan.conftest import MakeLan
from tests.lan.netns import PYTHON, Host

pytestmark = pytest.mark.lan

# POSTs junk to the envelope path: any HTTP answer means the port is served there.
PROBE = textwrap.dedent(
    """
    import json, sys, urllib.error, urllib.request
    url = sys.argv[1]
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"x"), timeout=10) as r:
            print(json.dumps({"status": r.status}))
    except urllib.error.HTTPError as exc:
        print(json.dumps({"status": exc.code}))
    except OSError as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
    """
)


def probe(client: Host, host: str, port: int) -> dict[str, object]:
    authority = f"[{host}]" if ":" in host else host
    url = f"http://{authority}:{port}/v1/envelope"
    result = client.run([PYTHON, "-c", PROBE, url])
    assert result.returncode == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


def start_everywhere(host: Host, data_dir: Path) -> tuple[ChatNode, int]:
    node = ChatNode(host, data_dir, "dana")
    node.start(interface=False)  # every address, --port 0: the defaults
    port = int(node.cli_json("status")["port"])
    assert port > 0
    return node, port


def test_default_port_is_the_same_on_ipv4_and_ipv6(make_lan: MakeLan, tmp_path: Path) -> None:
    lan = make_lan(2)
    server, client = lan.hosts
    node, port = start_everywhere(server, tmp_path / "dana")
    try:
        assert server.ipv6_link_local is not None
        over_ipv4 = probe(client, server.ip, port)
        over_ipv6 = probe(client, f"{server.ipv6_link_local}%{client.ifname}", port)
        # A junk envelope is refused by the node (4xx), not by the kernel.
        assert "status" in over_ipv4, over_ipv4
        assert "status" in over_ipv6, over_ipv6
    finally:
        node.stop()


def test_default_port_on_a_lan_without_ipv6(make_lan: MakeLan, tmp_path: Path) -> None:
    lan = make_lan(2, ipv6=False)
    server, client = lan.hosts
    node, port = start_everywhere(server, tmp_path / "dana")
    try:
        answer = probe(client, server.ip, port)
        assert "status" in answer, answer
    finally:
        node.stop()
