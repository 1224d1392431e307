"""Small pure cryptographic functions over PyNaCl.

Every derived key has its own purpose string (see :mod:`p2pchat.crypto.purposes`),
so no key is ever used for two jobs.
"""
