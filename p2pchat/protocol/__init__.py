"""Sans-I/O core: wire formats, the session handshake and state, events.

Nothing here does I/O or imports asyncio, aiortc, zeroconf, aiohttp or sqlite:
callers pass bytes and the current time in, and get bytes and events out.
"""
