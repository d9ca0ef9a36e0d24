"""Turn run parameters (CLI flags or flow parameters) into a validated plan, before any work.

Everything a user can get wrong (inventory, targets, baselines, store folder, numbers) is checked
here, so bad input exits non-zero with a message naming the file, field and fix, and nothing
is scanned or written. The CLI calls this before starting Prefect; the flow calls it again
(cheap) so deployments get the same checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from patchfleet.collect import CollectOptions
from patchfleet.domain.baseline import (
    Baseline,
    BaselineRegistry,
    embedded_baselines_dir,
    load_baseline,
    load_baselines,
)
from patchfleet.domain.baseline_io import baselines_from_aws_json
from patchfleet.domain.firstseen import first_seen
from patchfleet.domain.inventory import Inventory, ResolvedNode, default_inventory, load_inventory
from patchfleet.domain.pending import PendingInstalls
from patchfleet.domain.targets import select_targets
from patchfleet.errors import ConfigError
from patchfleet.paths import store_root
from patchfleet.scan import ScanOptions
from patchfleet.store.query import ComplianceStore
from patchfleet.store.writer import check_writable

OPERATIONS = ("Scan",)


@dataclass(frozen=True)
class RunPlan:
    nodes: list[ResolvedNode]
    registry: BaselineRegistry
    options: ScanOptions
    store_root: Path
    inventory_source: str


def load_registry(baselines_dir: str | None) -> BaselineRegistry:
    """The embedded defaults, plus (overriding by name) the baselines in ``baselines_dir``."""
    registry = load_baselines(embedded_baselines_dir())
    if baselines_dir:
        extra = Path(baselines_dir).expanduser()
        if not extra.is_dir():
            raise ConfigError("is not a folder of baseline YAML files", source=str(extra))
        registry = registry.merged(load_baselines(extra))
    return registry


def load_override(spec: str, registry: BaselineRegistry) -> dict[str, Baseline]:
    """``--baseline`` / BaselineOverride: a baseline name, a YAML file, or AWS JSON (one
    get-patch-baseline object or an array of them, one per OS)."""
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix.lower() == ".json":
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise ConfigError(f"not readable AWS baseline JSON: {err}", source=str(path)
                                  ) from None
            baselines = baselines_from_aws_json(data, source=str(path))
        else:
            baselines = [load_baseline(path)]
    elif spec.endswith((".yaml", ".yml", ".json")) or "/" in spec:
        raise ConfigError("file not found; pass a baseline name or an existing file",
                          source=spec)
    else:
        baselines = [registry.get(spec)]
    out: dict[str, Baseline] = {}
    for b in baselines:
        if b.operating_system in out:
            raise ConfigError(
                f"two baselines for {b.operating_system}; a BaselineOverride has one per OS",
                source=spec,
            )
        out[b.operating_system] = b
    return out


def plan_scan(
    *,
    operation: str = "Scan",
    inventory: str | None = None,
    targets: str = "*",
    baseline: str | None = None,
    baselines_dir: str | None = None,
    store: str | None = None,
    refresh: bool = True,
    concurrency: int = 50,
    lock_timeout: int = 60,
) -> RunPlan:
    if operation not in OPERATIONS:
        raise ConfigError(
            f"{operation!r} is not supported here; use one of {', '.join(OPERATIONS)}",
            source="operation",
        )
    if not 1 <= concurrency <= 10000:
        raise ConfigError("must be between 1 and 10000", source="--concurrency")
    if not 0 <= lock_timeout <= 3600:
        raise ConfigError("must be between 0 and 3600 seconds", source="--lock-timeout")
    inv: Inventory = load_inventory(inventory) if inventory else default_inventory()
    source = inventory or "(embedded default: the local node)"
    nodes = select_targets(inv.resolved(), targets)
    registry = load_registry(baselines_dir)
    for group, mapping in inv.patch_groups.items():
        for os_name, name in mapping.items():
            if not registry.has(name):
                raise ConfigError(
                    f"baseline {name!r} is not defined; known: {', '.join(registry.names())}",
                    source=source,
                    field=f"patch_groups.{group}.{os_name}",
                )
    overrides = load_override(baseline, registry) if baseline else {}
    root = store_root(store)
    check_writable(root)
    with ComplianceStore(root) as history:
        seen = first_seen(history.first_sightings())
        pending = {
            node_id: PendingInstalls(boot_id, frozenset(packages))
            for node_id, (boot_id, packages) in history.pending_installs().items()
        }
    options = ScanOptions(
        collect=CollectOptions(refresh=refresh, lock_timeout=lock_timeout),
        baseline_overrides=overrides,
        patch_groups=inv.patch_groups,
        concurrency=concurrency,
        first_seen=seen,
        pending=pending,
    )
    return RunPlan(nodes=nodes, registry=registry, options=options, store_root=root,
                   inventory_source=source)
