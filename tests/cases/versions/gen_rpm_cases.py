"""Regenerate rpm_compare.txt: seeded random EVR pairs judged by the real rpm.

    apt-get install -y rpm                          # Debian ships rpm with its Lua
    python tests/cases/versions/gen_rpm_cases.py

Each line is ``A B RESULT``: RESULT is ``rpm.vercmp(A, B)`` from rpm's embedded Lua, which parses
both strings as ``[epoch:]version[-release]`` and compares them with ``rpmverCmp``. All pairs go
through one ``rpm --eval`` call. ``tests/unit/test_versions.py`` checks ``rpm_compare`` against the
committed file and, when rpm is installed, asks rpm again (``judge_with_rpm``).
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "rpm_compare.txt"
SEED = 20260102
COUNT = 6000

_LUA = """%%{lua:
for line in io.lines("%s") do
  local a, b = line:match("^(%%S+) (%%S+)$")
  io.write(rpm.vercmp(a, b), "\\n")
end
io.flush()
}"""


def _number(rng: random.Random) -> str:
    n = str(rng.choice([0, 0, 1, 2, 3, 9, 10, 11, 99, 100, 2024, rng.randrange(10**12)]))
    if rng.random() < 0.15:
        n = "0" * rng.randint(1, 2) + n
    return n


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("abceilrxzAZ") for _ in range(rng.randint(1, 4)))


def _part(rng: random.Random) -> str:
    out = [rng.choice([_number(rng), _number(rng), _word(rng)])]
    for _ in range(rng.randint(0, 5)):
        r = rng.random()
        if r < 0.3:
            out.append(rng.choice("._+") + _number(rng))
        elif r < 0.45:
            out.append(_word(rng))
        elif r < 0.55:
            out.append("~" + rng.choice(["", _word(rng), _number(rng)]))
        elif r < 0.65:
            out.append("^" + rng.choice(["", _word(rng), _number(rng)]))
        elif r < 0.75:
            out.append(rng.choice([".", "_", "+", "..", "%"]))
        else:
            out.append(_number(rng))
    return "".join(out)


def random_evr(rng: random.Random) -> str:
    epoch = rng.choice(["", "", "", "0:", "1:", "2:", "10:", "01:", ":"])
    release = "-" + _part(rng) if rng.random() < 0.7 else ""
    return epoch + _part(rng) + release


def mutate(evr: str, rng: random.Random) -> str:
    edits = [
        lambda v: v + rng.choice(["~", "~rc1", "^", "^post1", "^~", "~^"]),
        lambda v: v + rng.choice([".0", "a", "0", ".el9", "_1", "-1", "-0", "."]),
        lambda v: v[:-1] if len(v) > 1 and v[-2] not in ":-" else v,
        lambda v: v.replace(".", ".0", 1),
        lambda v: v.replace(".", "_", 1),
        lambda v: v.replace("-", "-0", 1) if "-" in v else v + "-1",
        lambda v: v.split("-", 1)[0] if "-" in v else v,
        lambda v: "0:" + v if ":" not in v else v.split(":", 1)[1],
        lambda v: "1:" + v.split(":", 1)[-1],
        lambda v: v.replace("~", "^", 1),
        lambda v: v.replace("^", "~", 1),
        lambda v: v.replace("a", "A", 1),
        lambda v: "".join(
            str((int(c) + 1) % 10) if c.isdigit() and rng.random() < 0.2 else c for c in v
        ),
    ]
    out = evr
    for _ in range(rng.randint(1, 2)):
        out = rng.choice(edits)(out)
    return out or evr


def generate(count: int = COUNT, seed: int = SEED) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = [
        # Corners from rpm's own tests/rpmvercmp.at and rpm.org's version docs.
        ("1.0", "1.0"),
        ("1.0", "2.0"),
        ("2.0.1", "2.0"),
        ("2.0.1a", "2.0.1"),
        ("5.5p1", "5.5p10"),
        ("10xyz", "10.1xyz"),
        ("xyz10", "xyz10.1"),
        ("xyz.4", "8"),
        ("1.0~rc1", "1.0"),
        ("1.0~rc1", "1.0~rc2"),
        ("1.0~rc1~git123", "1.0~rc1"),
        ("1.0^", "1.0"),
        ("1.0^git1", "1.0"),
        ("1.0^git1", "1.01"),
        ("1.0^20160101", "1.0.1"),
        ("1.0^20160101^git1", "1.0^20160101"),
        ("1.0~rc1^git1", "1.0~rc1"),
        ("1.0^git1~pre", "1.0^git1"),
        ("a+", "a_"),
        ("+a", "_a"),
        ("1.0", "1.0-1"),
        ("1:1.0", "2.0"),
        ("0:1.0", "1.0"),
        (":1.0", "1.0"),
        ("1.0-1", "1.0-1.el9"),
        ("1.0-1.el9", "1.0-1.el9_2"),
        ("2.9-11.el9_2.1", "2.9-11.el9_2.10"),
        ("001", "1"),
        ("1.a", "1.1"),
        ("1.0-", "1.0"),
    ]
    while len(pairs) < count:
        a = random_evr(rng)
        b = mutate(a, rng) if rng.random() < 0.7 else random_evr(rng)
        pairs.append((a, b))
    return pairs


def judge_with_rpm(pairs: Sequence[tuple[str, str]]) -> list[int]:
    """Ask the real rpm about every pair in one process."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("".join(f"{a} {b}\n" for a, b in pairs))
        path = f.name
    try:
        proc = subprocess.run(
            ["rpm", "--eval", _LUA % path], capture_output=True, text=True, check=False
        )
    finally:
        Path(path).unlink()
    if proc.returncode != 0:
        raise RuntimeError(f"rpm judge failed: {proc.stderr.strip()}")
    got = [int(x) for x in proc.stdout.split()]
    if len(got) != len(pairs):
        raise RuntimeError(f"rpm judged {len(got)} of {len(pairs)} pairs: {proc.stderr.strip()}")
    return got


def main() -> int:
    pairs = generate()
    results = judge_with_rpm(pairs)
    OUT.write_text("".join(f"{a} {b} {r}\n" for (a, b), r in zip(pairs, results, strict=True)))
    print(f"wrote {len(pairs)} pairs to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
