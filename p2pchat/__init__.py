"""p2pchat: private chat across a home LAN, no internet, no configuration."""

__version__ = "0.1.0"
