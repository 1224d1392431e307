"""mDNS / DNS-SD adapter: advertise ourselves and track peers, over ``zeroconf.asyncio``.

Timing (RFC 6762):

* An already running peer is found by the browser's first query (sent 20-120 ms
  after start, section 5.2) whose answer carries SRV/TXT/A/AAAA as additional
  records, so resolving it needs no second round trip.
* Our own advert is probed by :meth:`LanDiscovery._async_probe`: a 0-250 ms random
  delay, three probes 250 ms apart, 250 ms more for a defence (section 8.1), then
  registration with ``cooperating_responders=True`` so zeroconf does not probe a
  second time. zeroconf's own probing spaces its probes 500 ms apart and takes
  ~1.2 s; this takes 0.75-1.0 s, the RFC's floor.
* A conflict found after registration (two hosts that probed at the same moment)
  is settled as section 9 says: the host whose SRV record compares lower renames.
* mDNS has no liveness: a peer whose link is cut stays cached until its PTR record
  expires (75 min, and zeroconf clamps PTR TTLs to at least 18.75 min). So
  :meth:`LanDiscovery.async_refresh` re-queries the peers' SRV records (QU, no known
  answers) and loses those that do not answer; it also runs every
  ``liveness_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import secrets
import socket
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from zeroconf import IPVersion, ServiceStateChange, Zeroconf, current_time_millis

# DNSOutgoing, DNSQuestion and the record-type constants are not in zeroconf's
# __all__; they are stable in practice and pinned by pyproject (zeroconf <1).
from zeroconf._dns import DNSQuestion, DNSRecord, DNSService
from zeroconf._protocol.outgoing import DNSOutgoing
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf
from zeroconf.const import (
    _CLASS_IN,
    _CLASS_UNIQUE,
    _FLAGS_QR_QUERY,
    _TYPE_ANY,
    _TYPE_PTR,
    _TYPE_SRV,
    _TYPE_TXT,
)

from p2pchat.crypto.identity import peer_id as crypto_peer_id
from p2pchat.discovery.events import (
    Advertised,
    DiscoveryEvent,
    LanPeer,
    PeerFound,
    PeerLost,
    PeerUpdated,
)
from p2pchat.discovery.interfaces import IpVersion, interface_addresses
from p2pchat.discovery.txt import AdvertError, PeerAdvert, decode_txt, encode_txt

SERVICE_TYPE = "_p2pchat._tcp.local."
MAX_PEERS = 256
RESOLVE_TIMEOUT = 1.5  # s: only spent when a browse answer lacked SRV/TXT/addresses
# s: a peer that answers neither query of a refresh in this time is lost; the second
# (multicast) query goes out halfway, and a peer may hold its multicast answer for a
# second after its last one, plus up to ~0.3 s of aggregation.
REFRESH_TIMEOUT = 2.5
LIVENESS_INTERVAL = 30.0  # s

# RFC 6762 section 8.1
_PROBE_DELAY_MAX = 0.25
_PROBE_INTERVAL = 0.25
_PROBES = 3
_IP_MULTICAST_ALL = 49  # Linux <linux/in.h>
_IPV6_MULTICAST_ALL = 29  # Linux <linux/in6.h>
_SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
_RESOLVE_ATTEMPTS = 3
_MAX_INSTANCE_BYTES = 63  # one DNS label
_MAX_NAME_IN_INSTANCE = 44  # leaves room for " (abcd)" and " (999)"

log = logging.getLogger(__name__)


@dataclass
class DiscoveryStats:
    """Counters for what was dropped; nothing here is fatal."""

    malformed: int = 0  # adverts that failed decode_txt (or had no port/address)
    over_capacity: int = 0  # new instances ignored because max_peers were known
    conflicts: int = 0  # times we renamed our own instance
    lost_by_refresh: int = 0  # peers lost because they stopped answering


class LanDiscovery:
    """Advertise ``advert`` on the LAN and keep a bounded, live map of peers.

    ``on_event`` is called from the event loop with :class:`PeerFound`,
    :class:`PeerUpdated`, :class:`PeerLost` and :class:`Advertised`; it must not block
    (``asyncio.Queue.put_nowait`` is a good choice). ``advert=None`` browses only.
    ``peer_id_of`` checks each peer's id against its key (default: the crypto
    module's ``peer_id``); ``None`` passes adverts with a mismatched id on, for a
    caller that checks them itself (the node does, to warn about a changed key).
    """

    def __init__(
        self,
        advert: PeerAdvert | None,
        port: int,
        on_event: Callable[[DiscoveryEvent], None],
        *,
        interfaces: Sequence[str] | None = None,
        ip_version: IpVersion = "both",
        peer_id_of: Callable[[bytes], str] | None = crypto_peer_id,
        max_peers: int = MAX_PEERS,
        liveness_interval: float | None = LIVENESS_INTERVAL,
    ) -> None:
        if not 0 < port < 65536:
            raise ValueError(f"port out of range: {port}")
        self._advert = advert
        self._port = port
        self._on_event = on_event
        self._interfaces = interfaces
        self._ip_version = ip_version
        self._peer_id_of = peer_id_of
        self._max_peers = max_peers
        self._max_resolving = max(16, min(max_peers, 64))
        self._liveness_interval = liveness_interval
        self.stats = DiscoveryStats()
        self._peers: dict[str, LanPeer] = {}  # by full service name
        self._azc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._info: AsyncServiceInfo | None = None  # our registered advert
        self._own_name: str | None = None  # full service name we probe or hold
        self._server = ""
        self._addresses: list[str] = []
        self._only_ipv6_scope: str | None = None
        self._resolving: dict[str, asyncio.Task[None]] = {}
        self._resolve_again: set[str] = set()
        self._rejected: set[str] = set()  # malformed adverts: not re-resolved by refresh
        self._tasks: set[asyncio.Task[None]] = set()
        self._register_lock = asyncio.Lock()
        self._last_reannounce = -1e9

    # -- public API ------------------------------------------------------------

    @property
    def instance_name(self) -> str | None:
        """Our instance name once advertised (after renames), e.g. ``"alice (abcd) (2)"``."""
        if self._info is None:
            return None
        return _instance(self._info.name)

    @property
    def peers(self) -> Mapping[str, LanPeer]:
        """Known peers by instance name (a read-only snapshot)."""
        return MappingProxyType({p.instance: p for p in self._peers.values()})

    async def async_start(self) -> None:
        """Start browsing, then probe and register our advert; returns once advertised.

        Peers may be reported while this runs. Raises ``ValueError`` when the chosen
        interfaces have no usable addresses.
        """
        chosen = interface_addresses(self._interfaces, self._ip_version)
        self._addresses = chosen.advertised
        indexes = chosen.ipv6_indexes
        self._only_ipv6_scope = str(indexes[0]) if len(indexes) == 1 else None
        version = (
            IPVersion.All
            if chosen.has_ipv4 and chosen.has_ipv6
            else IPVersion.V4Only
            if chosen.has_ipv4
            else IPVersion.V6Only
        )
        self._azc = AsyncZeroconf(interfaces=chosen.bind, ip_version=version)
        if self._interfaces is not None:
            _hear_only_chosen_interfaces(self._azc.zeroconf, self._interfaces)
        self._browser = AsyncServiceBrowser(
            self._azc.zeroconf, SERVICE_TYPE, handlers=[self._on_service_state_change]
        )
        if self._liveness_interval is not None:
            self._spawn(self._async_liveness_loop(self._liveness_interval))
        if self._advert is not None:
            self._server = f"p2p-{self._advert.peer_id[:4]}-{secrets.token_hex(4)}.local."
            async with self._register_lock:
                await self._async_probe_and_register(_base_instance(self._advert))

    async def async_stop(self) -> None:
        """Say goodbye (peers see us lost at once) and close the sockets."""
        for task in [*self._tasks, *self._resolving.values()]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._resolving.values(), return_exceptions=True)
        self._tasks.clear()
        self._resolving.clear()
        if self._browser is not None:
            await self._browser.async_cancel()
            self._browser = None
        if self._azc is not None:
            await self._azc.async_close()  # unregisters: sends goodbye packets
            self._azc = None
        self._info = None
        self._peers.clear()

    async def async_refresh(
        self, instance: str | None = None, wait: float = REFRESH_TIMEOUT
    ) -> None:
        """Ask again: re-query ``instance`` (or every known peer) and the service type.

        Peers that do not answer two queries within ``wait`` seconds are lost
        (:class:`PeerLost`); peers that answer with new data are updated, and peers
        that came back (say after a link came up) are found again. Use it after a
        network change; it also runs every ``liveness_interval`` seconds.
        """
        zc = self._zc()
        now = current_time_millis()
        names = [_full(instance)] if instance is not None else list(self._peers)
        self._send_refresh_query(zc, names, with_type=True, unicast=True)
        half = wait / 2
        deadline = now + wait * 1000
        retried = False
        while True:
            silent = [n for n in names if n in self._peers and not _answered_since(zc, n, now)]
            if not silent or current_time_millis() >= deadline:
                break
            if not retried and current_time_millis() >= now + half * 1000:
                retried = True
                self._send_refresh_query(zc, silent, with_type=False, unicast=False)
            await asyncio.sleep(0.05)
        for name in silent:
            self.stats.lost_by_refresh += 1
            self._lose(name, purge_cache=True)
        # Instances the browser reported but that we could not resolve then.
        for record in zc.cache.async_all_by_details(SERVICE_TYPE, _TYPE_PTR, _CLASS_IN):
            name = getattr(record, "alias", "")
            if (
                name
                and name not in self._peers
                and name not in self._resolving
                and name not in self._rejected
                and (self._info is None or name != self._info.name)
                and len(self._peers) < self._max_peers
            ):
                self._schedule_resolve(name)

    # -- zeroconf callbacks ----------------------------------------------------

    def _on_service_state_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        if self._info is not None and name == self._info.name:
            if state_change is not ServiceStateChange.Removed:
                self._check_late_conflict(zeroconf)
            return
        self._rejected.discard(name)
        if state_change is ServiceStateChange.Removed:
            self._lose(name, purge_cache=False)
            return
        if name not in self._peers and len(self._peers) >= self._max_peers:
            self.stats.over_capacity += 1
            log.debug("ignoring %r: already tracking %d peers", name, len(self._peers))
            return
        self._schedule_resolve(name)

    # -- resolving peers -------------------------------------------------------

    def _schedule_resolve(self, name: str) -> None:
        if name in self._resolving:
            self._resolve_again.add(name)
            return
        if len(self._resolving) >= self._max_resolving:
            # Bounded work under a flood; the next refresh sweeps up what we skip.
            log.debug("not resolving %r now: %d lookups in flight", name, len(self._resolving))
            return
        task = asyncio.create_task(self._async_resolve(name))
        self._resolving[name] = task
        task.add_done_callback(lambda t: self._resolve_done(name, t))

    def _resolve_done(self, name: str, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("resolving %r failed", name, exc_info=exc)
        if self._resolving.get(name) is task:
            del self._resolving[name]
        if name in self._resolve_again and self._azc is not None:
            self._resolve_again.discard(name)
            self._schedule_resolve(name)

    async def _async_resolve(self, name: str) -> None:
        zc = self._zc()
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        for _attempt in range(_RESOLVE_ATTEMPTS):
            if await info.async_request(zc, RESOLVE_TIMEOUT * 1000):
                break
        else:
            log.debug("no SRV/TXT/address answer for %r", name)
            return
        if zc.cache.current_entry_with_name_and_alias(SERVICE_TYPE, name) is None:
            return  # said goodbye while we were asking
        try:
            advert = decode_txt(info.properties, peer_id_of=self._peer_id_of)
            if not info.port:
                raise AdvertError("no port in SRV record")
        except AdvertError as exc:
            if len(self._rejected) >= 4 * self._max_peers:
                self._rejected.clear()
            self._rejected.add(name)
            self.stats.malformed += 1
            log.debug("dropping malformed advert %r: %s", name, exc)
            return
        addresses = info.parsed_scoped_addresses(IPVersion.V4Only) + [
            a for a in map(self._scoped, info.parsed_scoped_addresses(IPVersion.V6Only)) if a
        ]
        peer = LanPeer(_instance(name), advert, tuple(dict.fromkeys(addresses)), info.port)
        old = self._peers.get(name)
        if old == peer:
            return
        if old is None and len(self._peers) >= self._max_peers:
            self.stats.over_capacity += 1
            return
        self._peers[name] = peer
        self._emit(PeerFound(peer) if old is None else PeerUpdated(peer))

    def _lose(self, name: str, *, purge_cache: bool) -> None:
        task = self._resolving.pop(name, None)
        if task is not None:
            task.cancel()
        self._resolve_again.discard(name)
        peer = self._peers.pop(name, None)
        if purge_cache and self._azc is not None:
            # Forget it entirely, so that when it answers again the browser sees a
            # new PTR record and reports it as added.
            cache = self._azc.zeroconf.cache
            stale: list[DNSRecord] = [
                r
                for r in cache.async_all_by_details(SERVICE_TYPE, _TYPE_PTR, _CLASS_IN)
                if getattr(r, "alias", None) == name
            ]
            stale += cache.async_all_by_details(name, _TYPE_SRV, _CLASS_IN)
            stale += cache.async_all_by_details(name, _TYPE_TXT, _CLASS_IN)
            cache.async_remove_records(stale)
        if peer is not None:
            self._emit(PeerLost(peer.instance, peer.peer_id))

    async def _async_liveness_loop(self, interval: float) -> None:
        # Also with no peers: the service-type question finds peers lost during an
        # outage once the link is back. The browser's own queries back off to an
        # hour apart, so after a long uptime two nodes that lost each other during
        # a cut would otherwise not meet again for up to an hour.
        while True:
            await asyncio.sleep(interval * random.uniform(0.9, 1.1))
            await self.async_refresh()

    def _send_refresh_query(
        self, zc: Zeroconf, names: list[str], *, with_type: bool, unicast: bool
    ) -> None:
        # No known answers, so every live peer answers. The first query asks QU: a
        # peer answers by multicast unless it multicast the record recently, then by
        # unicast to our address's port 5353. Where two nodes share an address (two
        # profiles on one machine) the kernel hands such a datagram to only one of
        # their sockets, so the retry asks QM: the answer is multicast, which every
        # socket gets (at least a second after the peer's last multicast of it,
        # RFC 6762 section 14: hence REFRESH_TIMEOUT).
        qclass = _CLASS_IN | _CLASS_UNIQUE if unicast else _CLASS_IN
        out = DNSOutgoing(_FLAGS_QR_QUERY)
        if with_type:
            out.add_question(DNSQuestion(SERVICE_TYPE, _TYPE_PTR, qclass))
        for name in names:
            out.add_question(DNSQuestion(name, _TYPE_SRV, qclass))
        if out.questions:
            zc.async_send(out)

    # -- our own advert --------------------------------------------------------

    async def _async_probe_and_register(self, base: str) -> None:
        zc = self._zc()
        number = 1
        while True:
            instance = base if number == 1 else f"{base} ({number})"
            info = self._service_info(instance)
            self._own_name = info.name
            if await self._async_probe(zc, info):
                break
            number += 1
            self.stats.conflicts += 1
            log.info("instance name %r is taken; trying another", instance)
        await self._azc_checked().async_register_service(info, cooperating_responders=True)
        self._info = info
        self._emit(Advertised(_instance(info.name)))

    async def _async_probe(self, zc: Zeroconf, info: AsyncServiceInfo) -> bool:
        """RFC 6762 section 8.1 probing; True when nobody defended the name."""
        await asyncio.sleep(random.uniform(0, _PROBE_DELAY_MAX))
        since = current_time_millis()
        out = DNSOutgoing(_FLAGS_QR_QUERY)
        out.add_question(DNSQuestion(info.name, _TYPE_ANY, _CLASS_IN | _CLASS_UNIQUE))
        # The proposed records go in the authority section (section 8.2); zeroconf's
        # typed add_authorative_answer only takes PTR records.
        proposed: list[Any] = [info.dns_service(), info.dns_text()]
        out.authorities.extend(proposed)
        for _ in range(_PROBES):
            zc.async_send(out)
            await asyncio.sleep(_PROBE_INTERVAL)
            if self._name_defended(zc, info.name, since):
                return False
        return True

    def _name_defended(self, zc: Zeroconf, name: str, since: float) -> bool:
        """Someone else answered with an SRV record for ``name`` while we probed.

        A cached record from before the probe (say from a peer whose link is gone)
        does not count: only a live defender does.
        """
        return any(
            isinstance(r, DNSService) and r.server_key != self._server.lower()
            for r in zc.cache.async_all_by_details(name, _TYPE_SRV, _CLASS_IN)
            if r.created >= since
        )

    def _check_late_conflict(self, zc: Zeroconf) -> None:
        """RFC 6762 section 9: two hosts registered one name; the lower SRV renames."""
        if self._info is None or self._register_lock.locked():
            return
        name = self._info.name
        ours = self._info.dns_service()
        for record in zc.cache.async_all_by_details(name, _TYPE_SRV, _CLASS_IN):
            if not isinstance(record, DNSService) or record.server_key == ours.server_key:
                continue
            if (record.server_key, record.port) > (ours.server_key, ours.port):
                log.info("instance name %r taken by %s; renaming", name, record.server)
                self._spawn(self._async_rename())
            else:
                self._spawn(self._async_reannounce())
            return

    async def _async_rename(self) -> None:
        async with self._register_lock:
            if self._info is None or self._advert is None:
                return
            old = self._info
            self._info = None
            # No goodbye: the winner's PTR record for this name is identical to ours,
            # and a goodbye would delete it from every cache on the link.
            zc = self._zc()
            zc.registry.async_remove(old)
            # Our own SRV for that name came back to us by multicast loop; drop it so
            # resolving the name finds the winner's.
            zc.cache.async_remove_records(
                r
                for r in zc.cache.async_all_by_details(old.name, _TYPE_SRV, _CLASS_IN)
                if isinstance(r, DNSService) and r.server_key == self._server.lower()
            )
            self.stats.conflicts += 1
            base = _base_instance(self._advert)
            await self._async_probe_and_register(f"{base} ({_next_number(old.name, base)})")
        # The name we gave up belongs to a peer; our browser saw it as our own.
        self._schedule_resolve(old.name)

    async def _async_reannounce(self) -> None:
        """We keep a contested name: announce again so caches flush the loser's SRV."""
        now = asyncio.get_running_loop().time()
        if now - self._last_reannounce < 1.0 or self._info is None:
            return
        self._last_reannounce = now
        await asyncio.sleep(random.uniform(0.02, 0.12))
        if self._info is not None:
            await self._azc_checked().async_update_service(self._info)

    def _service_info(self, instance: str) -> AsyncServiceInfo:
        assert self._advert is not None
        return AsyncServiceInfo(
            SERVICE_TYPE,
            _full(instance),
            port=self._port,
            properties=encode_txt(self._advert),
            server=self._server,
            parsed_addresses=self._addresses,
        )

    # -- helpers ---------------------------------------------------------------

    def _scoped(self, address: str) -> str | None:
        """A link-local IPv6 address heard over IPv4 has no scope: add ours, if unique."""
        if "%" in address or not ipaddress.IPv6Address(address).is_link_local:
            return address
        if self._only_ipv6_scope is None:
            return None  # unusable without knowing the interface
        return f"{address}%{self._only_ipv6_scope}"

    def _emit(self, event: DiscoveryEvent) -> None:
        try:
            self._on_event(event)
        except Exception:
            log.exception("discovery event handler failed on %r", event)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _zc(self) -> Zeroconf:
        return self._azc_checked().zeroconf

    def _azc_checked(self) -> AsyncZeroconf:
        if self._azc is None:
            raise RuntimeError("LanDiscovery is not running (call async_start first)")
        return self._azc


def _hear_only_chosen_interfaces(zc: Zeroconf, names: Sequence[str]) -> None:
    """Keep other interfaces' multicast out of zeroconf's wildcard listen socket.

    Linux hands multicast to a wildcard socket for groups that *any* socket on the host
    joined, on any interface (IP_MULTICAST_ALL), and its IPv6 group check ignores the
    interface altogether. One chosen interface: bind the socket to it, which settles
    both. Several: turn IP_MULTICAST_ALL off, which settles IPv4 only.
    """
    listen_socket = getattr(zc.engine, "_listen_socket", None)
    if not isinstance(listen_socket, socket.socket):
        return
    options: list[tuple[int, int, int | bytes]] = [(socket.IPPROTO_IP, _IP_MULTICAST_ALL, 0)]
    if listen_socket.family == socket.AF_INET6:
        options.append((socket.IPPROTO_IPV6, _IPV6_MULTICAST_ALL, 0))
    if len(names) == 1:
        options.append((socket.SOL_SOCKET, _SO_BINDTODEVICE, names[0].encode()))
    for level, option, value in options:
        try:
            listen_socket.setsockopt(level, option, value)
        except OSError as exc:  # not Linux, an old kernel, or no privilege
            log.debug("cannot restrict multicast delivery (%s, %s): %s", level, option, exc)


def _answered_since(zc: Zeroconf, name: str, since: float) -> bool:
    return any(
        r.created >= since for r in zc.cache.async_all_by_details(name, _TYPE_SRV, _CLASS_IN)
    )


def _base_instance(advert: PeerAdvert) -> str:
    """``"alice (abcd)"``: the display name, cut to fit one DNS label, and a short id."""
    name = advert.name.encode()[:_MAX_NAME_IN_INSTANCE].decode(errors="ignore").strip()
    instance = f"{name} ({advert.peer_id[:4]})"
    assert len(instance.encode()) <= _MAX_INSTANCE_BYTES - len(" (999)")
    return instance


def _next_number(full_name: str, base: str) -> int:
    suffix = _instance(full_name).removeprefix(base).strip()
    if suffix.startswith("(") and suffix.endswith(")") and suffix[1:-1].isdigit():
        return int(suffix[1:-1]) + 1
    return 2


def _full(instance: str) -> str:
    return f"{instance}.{SERVICE_TYPE}"


def _instance(full_name: str) -> str:
    return full_name[: -len(SERVICE_TYPE) - 1]
