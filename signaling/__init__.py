"""Signaling for browser guests: invite rooms, an opaque-blob WebSocket relay, TLS,
and the guest page. Embedded in the node (``signaling.app.make_app`` with the node
as :class:`signaling.app.OwnerHooks`) or run standalone (``p2pchat signal-server``,
owners connect with :class:`signaling.owner_client.OwnerClient`).

Modules: ``rooms`` (pure registry), ``app`` (aiohttp application), ``server``
(start/stop on a port), ``tls`` (certificate), ``owner_client``, ``cli``.
"""
