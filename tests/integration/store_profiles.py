"""What the profile-store tests share: a fast KDF, one passphrase and seed, reopening.

The fixtures that make a fresh profile (``data_dir``, ``profile``) are in
tests/integration/conftest.py and use these.
"""

from __future__ import annotations

from p2pchat.store import KdfLimits, Profile, open_profile

FAST = KdfLimits(opslimit=1, memlimit=8192)  # tests only: the real default is slow on purpose
PASSPHRASE = "correct horse battery staple"
SEED = bytes(range(32))


def reopen(profile: Profile) -> Profile:
    """Close ``profile`` and open it again from disk (what a restart sees)."""
    profile.close()
    return open_profile(profile.paths.data_dir, PASSPHRASE, kdf_limits=FAST)
