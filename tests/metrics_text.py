"""A strict reader of the Prometheus text format 0.0.4, for tests of /metrics: it
refuses what a scraper would refuse (a sample before its family's HELP/TYPE, a family
declared twice, a bad escape), so a test that parses the output checks its format."""

from __future__ import annotations

import math
import re

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^({_NAME})(\{{.*\}})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')

Sample = tuple[str, tuple[tuple[str, str], ...]]


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def parse(text: str) -> tuple[dict[Sample, float], dict[str, tuple[str, str]]]:
    """(samples by (name, sorted labels), families by name → (type, help))."""
    if not text.endswith("\n"):
        raise ValueError("the exposition must end with a newline")
    samples: dict[Sample, float] = {}
    families: dict[str, tuple[str, str]] = {}
    helps: dict[str, str] = {}
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            if name in helps:
                raise ValueError(f"HELP twice for {name}")
            helps[name] = unescape(help_text)
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            if name in families or name not in helps:
                raise ValueError(f"TYPE twice or without HELP for {name}")
            if kind not in ("counter", "gauge"):
                raise ValueError(f"unexpected type {kind!r}")
            families[name] = (kind, helps[name])
        else:
            match = _SAMPLE.match(line)
            if match is None:
                raise ValueError(f"not a sample line: {line!r}")
            name, labels_text, value_text = match.groups()
            if name not in families:
                raise ValueError(f"sample before its TYPE: {name}")
            labels: list[tuple[str, str]] = []
            rest = (labels_text or "{}")[1:-1]
            while rest:
                label = _LABEL.match(rest)
                if label is None:
                    raise ValueError(f"bad labels: {labels_text!r}")
                labels.append((label.group(1), unescape(label.group(2))))
                rest = rest[label.end() :]
            value = float(value_text.replace("+Inf", "inf").replace("-Inf", "-inf"))
            key = (name, tuple(sorted(labels)))
            if key in samples:
                raise ValueError(f"sample twice: {key}")
            samples[key] = value if not math.isnan(value) else math.nan
    return samples, families


def value(samples: dict[Sample, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]
