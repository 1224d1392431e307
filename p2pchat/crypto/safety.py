"""Safety numbers: one value per pair of keys, the same on both sides."""

from __future__ import annotations

from dataclasses import dataclass

from p2pchat.crypto import purposes

GROUPS = 12
GROUP_BYTES = 5
QR_PREFIX = "p2pchat:sn:1:"


@dataclass(frozen=True)
class SafetyNumber:
    groups: tuple[str, ...]

    @property
    def digits(self) -> str:
        """60 digits in 12 groups of 5, as people read them out."""
        return " ".join(self.groups)

    @property
    def qr_payload(self) -> str:
        return QR_PREFIX + "".join(self.groups)


def safety_number(key_a: bytes, key_b: bytes) -> SafetyNumber:
    # Sorting the keys makes the number independent of who computes it.
    low, high = sorted((key_a, key_b))
    digest = purposes.derive(purposes.SAFETY_NUMBER, low + high, GROUPS * GROUP_BYTES)
    groups = tuple(
        f"{int.from_bytes(digest[i : i + GROUP_BYTES], 'big') % 100_000:05d}"
        for i in range(0, len(digest), GROUP_BYTES)
    )
    return SafetyNumber(groups)
