"""LAN discovery: who is out there, over mDNS / DNS-SD (``_p2pchat._tcp.local.``)."""

from p2pchat.discovery.txt import AdvertError, PeerAdvert, decode_txt, encode_txt

__all__ = ["AdvertError", "PeerAdvert", "decode_txt", "encode_txt"]
