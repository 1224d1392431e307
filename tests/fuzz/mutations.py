"""Near-valid input for the fuzz tests: a genuine encoding with a few random edits.

A Hypothesis strategy, so every draw comes from the test's seed: a failing example is
printed with its seed (``print_blob``, tests/fuzz/conftest.py) and replays from it.
"""

from __future__ import annotations

from hypothesis import strategies as st


@st.composite
def mutated(draw: st.DrawFn, genuine: bytes) -> bytes:
    """``genuine`` with one to four edits: flip, set, insert, delete, truncate, extend."""
    data = bytearray(genuine)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "extend"]))
        if op in ("flip", "set", "delete") and not data:
            op = "extend"
        if op == "flip":
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif op == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            i = draw(st.integers(0, len(data) - 1))
            del data[i : i + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[draw(st.integers(0, len(data))) :]
        else:
            data += draw(st.binary(min_size=1, max_size=32))
    return bytes(data)
