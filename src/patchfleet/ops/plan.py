"""Turn run parameters (CLI flags or flow parameters) into a validated plan, before any work.

Everything a user can get wrong (inventory, targets, baselines, the store's folder or bucket,
numbers) is checked here, so bad input exits non-zero with a message naming the file, field and
fix, and nothing is scanned or written. The CLI calls this before starting Prefect; the flow
calls it again (cheap) so deployments get the same checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from patchfleet.config.baselines import (
    embedded_baselines_dir,
    load_aws_json_file,
    load_baseline,
    load_baselines,
)
from patchfleet.config.fetch import fetch_text
from patchfleet.config.hooks import Hooks, load_hooks_file
from patchfleet.config.overrides import parse_install_override_text
from patchfleet.config.sources import load_nodes_source
from patchfleet.domain.baseline import Baseline, BaselineRegistry
from patchfleet.domain.firstseen import first_seen
from patchfleet.domain.install_plan import check_override_combination
from patchfleet.domain.inventory import Inventory, ResolvedNode, default_inventory
from patchfleet.domain.pending import PendingInstalls
from patchfleet.domain.requests import PatchRequest
from patchfleet.domain.rollout import Rate, parse_rate, patch_now_defaults
from patchfleet.domain.selectors import select_targets
from patchfleet.domain.uris import normalize_s3_uri
from patchfleet.errors import ConfigError
from patchfleet.managers.base import CollectOptions
from patchfleet.ops.rollout import InstallOptions
from patchfleet.ops.scan import ScanOptions
from patchfleet.store.location import StoreLocation
from patchfleet.store.query import ComplianceStore
from patchfleet.store.writer import check_writable

OPERATIONS = ("Scan", "Install")
REBOOT_OPTIONS = ("RebootIfNeeded", "NoReboot", "RebootIfRequired")


@dataclass(frozen=True)
class RunPlan:
    nodes: list[ResolvedNode]
    registry: BaselineRegistry
    options: ScanOptions
    store_root: StoreLocation
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


def load_override(spec: str | Mapping[str, str], registry: BaselineRegistry
                  ) -> dict[str, Baseline]:
    """``--baseline`` / BaselineOverride: a baseline name, a YAML file, or AWS JSON (one
    get-patch-baseline object or an array of them, one per OS); or OperatingSystem -> baseline
    name (a patch policy's baselines, taken from ``registry``)."""
    if not isinstance(spec, str):
        return _one_per_os([registry.get(name) for name in spec.values()], "baselines")
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix.lower() == ".json":
            baselines = load_aws_json_file(path)
        else:
            baselines = [load_baseline(path)]
    elif spec.endswith((".yaml", ".yml", ".json")) or "/" in spec:
        raise ConfigError("file not found; pass a baseline name or an existing file",
                          source=spec)
    else:
        baselines = [registry.get(spec)]
    return _one_per_os(baselines, spec)


def _one_per_os(baselines: list[Baseline], spec: str) -> dict[str, Baseline]:
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
    baseline: str | Mapping[str, str] | None = None,
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
    for flag, value in (("--inventory", inventory), ("--store", store),
                        ("--baselines-dir", baselines_dir)):
        if value is not None and not value.strip():
            raise ConfigError("is empty: give a value, or leave the option out for its "
                              "default", source=flag)
    inv: Inventory = load_nodes_source(inventory) if inventory else default_inventory()
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
            baseline_os = registry.get(name).operating_system
            if baseline_os.value != os_name:
                raise ConfigError(
                    f"baseline {name!r} is for {baseline_os.value}, not {os_name}; map "
                    f"{os_name} to a {os_name} baseline",
                    source=source,
                    field=f"patch_groups.{group}.{os_name}",
                )
    overrides = load_override(baseline, registry) if baseline else {}
    root = StoreLocation.resolve(store)
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
        post_state=True,
    )
    return RunPlan(nodes=nodes, registry=registry, options=options, store_root=root,
                   inventory_source=source)


@dataclass(frozen=True)
class InstallSettings:
    """What an Install run needs on top of a scan plan, validated up front."""

    options: InstallOptions
    max_concurrency: Rate
    max_errors: Rate


def install_rates(nodes: int, max_concurrency: str | None,
                  max_errors: str | None) -> tuple[Rate, Rate]:
    """MaxConcurrency and MaxErrors as given, else Patch now's defaults for ``nodes`` nodes."""
    defaults = patch_now_defaults(nodes, "Install")
    concurrency = (parse_rate(max_concurrency, "max_concurrency") if max_concurrency
                   else defaults.max_concurrency)
    errors = (parse_rate(max_errors, "max_errors") if max_errors is not None
              else defaults.max_errors)
    return concurrency, errors


def plan_install_settings(
    *,
    nodes: int,
    reboot_option: str = "RebootIfNeeded",
    install_override_list: str | None = None,
    baseline_override: str | Mapping[str, str] | None = None,
    hooks: str | None = None,
    max_concurrency: str | None = None,
    max_errors: str | None = None,
    dry_run: bool = False,
    run_id: str = "",
    snapshot_id: str | None = None,
) -> InstallSettings:
    """Validate the Install parameters (AWS-RunPatchBaseline + hooks + rate control).

    Without ``max_concurrency`` / ``max_errors`` the Patch now defaults for the fleet size
    apply (spec section 7)."""
    if reboot_option not in REBOOT_OPTIONS:
        raise ConfigError(f"{reboot_option!r} is not a reboot option; use one of "
                          f"{', '.join(REBOOT_OPTIONS)}", source="--reboot-option")
    check_override_combination(baseline_override, install_override_list)
    override = None
    if install_override_list:
        text, source = fetch_text(install_override_list)
        override = parse_install_override_text(text, source)
    hook_cfg = load_hooks_file(Path(hooks).expanduser()) if hooks else Hooks()
    concurrency, errors = install_rates(nodes, max_concurrency, max_errors)
    return InstallSettings(
        options=InstallOptions(reboot_option=reboot_option, hooks=hook_cfg, override=override,
                               dry_run=dry_run, run_id=run_id, snapshot_id=snapshot_id),
        max_concurrency=concurrency,
        max_errors=errors,
    )


def plan_request(request: PatchRequest, run_id: str) -> tuple[RunPlan, InstallSettings | None]:
    """Check a whole ``patch-nodes`` request before any node is contacted: the scan plan, and
    for an Install its settings (reboot option, override list, hooks, rates)."""
    if request.report_uri:  # a bad URI is bad input: refuse before anything is scanned
        normalize_s3_uri(request.report_uri, source="report_uri")
    plan = plan_scan(
        operation=request.operation, inventory=request.inventory, targets=request.targets,
        baseline=request.baseline_override, baselines_dir=request.baselines_dir,
        store=request.store, refresh=request.refresh, concurrency=request.concurrency,
        lock_timeout=request.lock_timeout,
    )
    if not request.install:
        return plan, None
    return plan, plan_install_settings(
        nodes=len(plan.nodes), reboot_option=request.reboot_option,
        install_override_list=request.install_override_list,
        baseline_override=request.baseline_override, hooks=request.hooks,
        max_concurrency=request.max_concurrency, max_errors=request.max_errors,
        dry_run=request.dry_run, run_id=run_id, snapshot_id=request.snapshot_id,
    )
