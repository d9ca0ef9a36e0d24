"""Parse every golden capture with patchfleet's parsers; write or check the expected parse.

Layout: ``tests/golden/<manager>/<case>/<probe>.stdout|.stderr|.exit|.cmd`` are what the real
tool printed and the command that was sent (captured by ``testnodes/capture_golden.py`` or, for
the ``*-host`` cases, on a real Debian machine), and ``<probe>.parsed.json`` is what the parser
made of it, reviewed by a person when it changes. ``python tests/golden/parse_golden.py
--write`` refreshes the .parsed.json files.

``<manager>`` is a :class:`PackageManager` value with a support module in
``patchfleet.managers``; each probe is parsed by the parser its manager pairs it with
(``PackageManagerSupport.probes``), so this file holds no probe-to-parser table of its own. A
probe that exited with a status its manager does not accept (a held lock, a broken repository)
is recorded as ``{"exit": N, "error": ..., "message": ...}`` with the error the collector raises
for it; a parser that refuses its input as the same; warnings the exit status means (zypper's
106, 103) as ``{"parsed": ..., "warnings": [...]}``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from patchfleet.domain.facts import PackageManager
from patchfleet.errors import NodeError
from patchfleet.managers.base import PackageManagerSupport, ProbeOutputs
from patchfleet.managers.registry import support_for, supports
from patchfleet.transport.base import CommandResult

GOLDEN = Path(__file__).resolve().parent


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {"|".join(k) if isinstance(k, tuple) else str(k): _jsonable(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, str | int | float | bool):
        return value.value
    return value


def support_of(case: Path) -> PackageManagerSupport:
    """The package manager whose probes a case folder holds (its parent folder's name)."""
    return support_for(PackageManager(case.parent.name))


def cases() -> list[Path]:
    return sorted(p for s in supports() for p in GOLDEN.glob(f"{s.manager.value}/*")
                  if p.is_dir())


def read_outputs(case: Path) -> ProbeOutputs:
    """Every probe output captured in ``case``, as the collector would have received it."""
    results = {}
    for probe in support_of(case).probes:
        base = case / probe.name
        if not base.with_name(f"{probe.name}.stdout").exists():
            continue
        results[probe.name] = CommandResult(
            probe.command.render(sudo=False),
            int(base.with_name(f"{probe.name}.exit").read_text().strip() or "0"),
            base.with_name(f"{probe.name}.stdout").read_text(encoding="utf-8"),
            base.with_name(f"{probe.name}.stderr").read_text(encoding="utf-8"),
            0.0,
        )
    return ProbeOutputs(results)


def parse_case(case: Path) -> dict[str, Any]:
    """probe name -> JSON-able parse, for every probe captured in the case folder."""
    support = support_of(case)
    outputs = read_outputs(case)
    out: dict[str, Any] = {}
    for probe in support.probes:
        if probe.parse is None or probe.name not in outputs:
            continue
        result = outputs.result(probe.name)
        try:
            warnings = support.judge_exit("node", probe, result, waited=0)
            parsed = outputs.parsed(probe)
            out[probe.name] = _jsonable(
                {"parsed": parsed, "warnings": warnings} if warnings else parsed)
        except NodeError as err:
            out[probe.name] = {"exit": result.exit_status, "error": type(err).__name__,
                               "message": str(err)}
    return out


def main(argv: list[str]) -> int:
    write = "--write" in argv
    changed = 0
    for case in cases():
        for probe, parsed in parse_case(case).items():
            path = case / f"{probe}.parsed.json"
            text = json.dumps(parsed, indent=1, sort_keys=True) + "\n"
            if not path.exists() or path.read_text() != text:
                changed += 1
                if write:
                    path.write_text(text)
                print(("wrote " if write else "differs: ") + str(path))
    return 1 if changed and not write else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
