"""Regenerate dpkg_compare.txt: seeded random version pairs judged by the real dpkg.

    python tests/cases/versions/gen_dpkg_cases.py       # needs dpkg on PATH

Each line of the output is ``A B RESULT`` with RESULT in -1/0/1 as ``dpkg --compare-versions``
decides. ``tests/unit/test_versions.py`` checks ``dpkg_compare`` against the committed file and,
when dpkg is installed, runs the same pairs through dpkg again (``judge_with_dpkg``).
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "dpkg_compare.txt"
SEED = 20260101
COUNT = 6000

# One shell per chunk: a process per pair would cost seconds per thousand pairs.
_JUDGE = r"""
while read -r a b; do
  if dpkg --compare-versions "$a" lt "$b"; then echo -1
  elif dpkg --compare-versions "$a" eq "$b"; then echo 0
  else echo 1; fi
done
"""


def _number(rng: random.Random) -> str:
    n = str(rng.choice([0, 0, 1, 2, 3, 9, 10, 11, 20, 99, 100, 2024, rng.randrange(10**6)]))
    if rng.random() < 0.15:
        n = "0" * rng.randint(1, 2) + n
    return n


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("abcdeiruzABZ") for _ in range(rng.randint(1, 3)))


def _part(rng: random.Random, seps: str, first_digit: bool) -> str:
    out = [_number(rng)] if first_digit else []
    for _ in range(rng.randint(0, 5)):
        r = rng.random()
        if r < 0.35:
            out.append(rng.choice(seps) + _number(rng))
        elif r < 0.55:
            out.append(_word(rng))
        elif r < 0.7:
            out.append("~" + rng.choice(["", _word(rng), _number(rng)]))
        elif r < 0.8:
            out.append(rng.choice(seps))
        else:
            out.append(_number(rng))
    s = "".join(out)
    return s or _number(rng)


def random_version(rng: random.Random) -> str:
    epoch = f"{rng.choice(['0', '1', '2', '10', '01'])}:" if rng.random() < 0.2 else ""
    upstream = _part(rng, ".+~", first_digit=True)
    if rng.random() < 0.6:
        if rng.random() < 0.2:
            upstream += "-" + _part(rng, ".+", first_digit=True)  # a hyphen inside upstream
        revision = _part(rng, ".+", first_digit=rng.random() < 0.8)
        return f"{epoch}{upstream}-{revision}"
    return epoch + upstream


def mutate(version: str, rng: random.Random) -> str:
    """A nearby version, so that most pairs are decided deep inside the strings."""
    edits = [
        lambda v: v + "~" + rng.choice(["", "rc1", "1", "~"]),
        lambda v: v + rng.choice([".0", "+b1", "a", "0", "+deb12u1", "~bpo12+1", "-0", "-1"]),
        lambda v: v[:-1] if len(v) > 1 and v[-2] not in ":-" else v,
        lambda v: v.replace(".", ".0", 1),
        lambda v: v.replace("-", "-0", 1) if "-" in v else v + "-0",
        lambda v: "0:" + v if ":" not in v else v.split(":", 1)[1],
        lambda v: "1:" + v.split(":", 1)[-1],
        lambda v: v.replace("~", "+", 1),
        lambda v: v.replace("+", "~", 1),
        lambda v: v.replace("a", "A", 1),
        lambda v: "".join(
            str((int(c) + 1) % 10) if c.isdigit() and rng.random() < 0.2 else c for c in v
        ),
    ]
    out = version
    for _ in range(rng.randint(1, 2)):
        out = rng.choice(edits)(out)
    return out


def valid(version: str) -> bool:
    """Only pairs dpkg accepts without a warning are kept."""
    epoch, colon, rest = version.rpartition(":")
    if colon and not epoch.isdigit():
        return False
    upstream, hyphen, revision = rest.rpartition("-")
    if not hyphen:
        upstream, revision = rest, ""
    elif not revision:
        return False
    allowed_up = set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.+~-")
    allowed_rev = allowed_up - {"-"}
    return (
        bool(upstream)
        and upstream[0].isdigit()
        and set(upstream) <= allowed_up
        and set(revision) <= allowed_rev
    )


def generate(count: int = COUNT, seed: int = SEED) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = [
        # Hand-picked corners from deb-version(7) and dpkg's own test suite.
        ("1.0~rc1", "1.0"),
        ("1.0", "1.0-0"),
        ("1.0-0", "1.0"),
        ("1:0", "2"),
        ("0:1.0", "1.0"),
        ("1.0~", "1.0~~"),
        ("1.0~~a", "1.0~~"),
        ("1.0a", "1.0+"),
        ("1.0a", "1.0."),
        ("1.0", "1.0a"),
        ("1.0.", "1.0+"),
        ("001", "1"),
        ("1.001", "1.1"),
        ("2.30-1ubuntu1", "2.30-1ubuntu1.1"),
        ("7.4.052-1ubuntu3", "7.4.052-1ubuntu3.1"),
        ("1.2.3-1", "1.2.3-1~bpo12+1"),
        ("1.2.3-1+deb12u1", "1.2.3-1+b1"),
        ("9.2p1-2+deb12u2", "9.2p1-2+deb12u3"),
        ("1:9.2p1-2", "9.9p9-9"),
        ("1.0-1-1", "1.0-1"),
        ("1.0-A", "1.0-a"),
        ("1.0~A", "1.0~a"),
        ("10", "9"),
        ("1.0+dfsg-1", "1.0-1"),
        ("2:1.0", "10:0.1"),
        ("0", "0~"),
        ("a", "b"),
    ]
    while len(pairs) < count:
        a = random_version(rng)
        b = mutate(a, rng) if rng.random() < 0.7 else random_version(rng)
        if valid(a) and valid(b):
            pairs.append((a, b))
    return [p for p in pairs if valid(p[0]) and valid(p[1])]


def judge_with_dpkg(pairs: Sequence[tuple[str, str]], jobs: int = 4) -> list[int]:
    """Ask the real dpkg about every pair, ``jobs`` shells in parallel."""
    size = max(1, -(-len(pairs) // jobs))
    chunks = [pairs[k : k + size] for k in range(0, len(pairs), size)]
    procs = [
        subprocess.Popen(
            ["sh", "-c", _JUDGE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in chunks
    ]
    results: list[int] = []
    for proc, chunk in zip(procs, chunks, strict=True):
        out, err = proc.communicate("".join(f"{a} {b}\n" for a, b in chunk))
        if proc.returncode != 0 or err.strip():
            raise RuntimeError(f"dpkg judge failed: {err.strip()}")
        got = [int(x) for x in out.split()]
        if len(got) != len(chunk):
            raise RuntimeError(f"dpkg judged {len(got)} of {len(chunk)} pairs")
        results.extend(got)
    return results


def main() -> int:
    pairs = generate()
    results = judge_with_dpkg(pairs)
    OUT.write_text("".join(f"{a} {b} {r}\n" for (a, b), r in zip(pairs, results, strict=True)))
    print(f"wrote {len(pairs)} pairs to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
