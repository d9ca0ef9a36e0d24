"""Patch policies and maintenance-window configs (spec sections 5 and 6), validated.

Pure: pydantic and the stdlib; the file is read by :mod:`patchfleet.config.policies`. The
deployments file (default ``deployments/policies.yaml``) has two lists::

    policies:
      - name: web-daily
        operation: ScanAndInstall          # Scan (default) | ScanAndInstall
        scan_schedule: cron(0 1 * * ? *)    # default: daily 01:00
        install_schedule: cron(0 2 ? * SUN *)  # default: Sunday 02:00
        schedule_timezone: UTC
        inventory: inventory.yaml           # default: the embedded local node
        targets: group:web                  # patchfleet target selectors
        baselines: {DEBIAN: debian-default} # OS -> baseline name
        max_concurrency: 10%                # number or %; default: Patch now defaults
        max_errors: "1"
        reboot_option: RebootIfNeeded       # RebootIfNeeded | NoReboot
        hooks: hooks.yaml
        publish_report: true                # false: no CSV reports
        report_uri: s3://bucket/patchfleet  # upload each run's reports (optional)
        scan_next_interval: false           # false: scan once at first deploy
        install_next_interval: true         # true: wait for the first install tick
    windows:
      - name: patch-tuesday                 # MaintenanceWindow fields ...
        schedule: cron(0 2 ? * TUE#2 *)
        duration_hours: 4
        cutoff_hours: 1
        inventory: inventory.yaml           # ... plus the window's registered targets
        targets: "*"
        tasks:
          - {name: scan, priority: 0, operation: Scan}
          - {name: install-web, priority: 1, operation: Install, targets: group:web,
             max_concurrency: 1, max_errors: 0, reboot_option: NoReboot}

Errors are :class:`ConfigError` naming the file, the field (``windows[0].cutoff_hours``) and
the fix. :func:`check_deployments` also resolves every target expression and returns
warnings (windows that overlap on the same nodes).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from patchfleet.domain.baseline import BaselineRegistry, OperatingSystem
from patchfleet.domain.inventory import Inventory, ResolvedNode
from patchfleet.domain.model_errors import short_repr, unknown_key_message
from patchfleet.domain.rollout import parse_rate
from patchfleet.domain.schedule_export import policy_schedule
from patchfleet.domain.selectors import select_targets
from patchfleet.domain.uris import normalize_s3_uri
from patchfleet.domain.windows import (
    CronSchedule,
    MaintenanceWindow,
    RateSchedule,
    check_name,
    check_timezone,
    load_window,
    next_runs,
    parse_schedule,
)
from patchfleet.errors import ConfigError

__all__ = [
    "DEFAULT_FILE",
    "DeploymentsFile",
    "PatchPolicy",
    "WindowConfig",
    "WindowTask",
    "check_deployments",
    "parse_deployments",
]

DEFAULT_FILE = "deployments/policies.yaml"
DEFAULT_SCAN_SCHEDULE = "cron(0 1 * * ? *)"
DEFAULT_INSTALL_SCHEDULE = "cron(0 2 ? * SUN *)"
OVERLAP_OCCURRENCES = 20

InventoryLoader = Callable[[str | None], Inventory]


def _rate(v: Any, field: str) -> str | None:
    if v is None:
        return None
    try:
        return str(parse_rate(v, field))
    except ConfigError as err:
        raise ValueError(err.message) from None


class _RateControlled(BaseModel):
    """MaxConcurrency / MaxErrors: a number or a percentage, checked like rollout.parse_rate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_concurrency: str | None = None
    max_errors: str | None = None

    @field_validator("max_concurrency", mode="before")
    @classmethod
    def _mc(cls, v: Any) -> str | None:
        return _rate(v, "max_concurrency")

    @field_validator("max_errors", mode="before")
    @classmethod
    def _me(cls, v: Any) -> str | None:
        return _rate(v, "max_errors")


class PatchPolicy(_RateControlled):
    """A Quick Setup patch policy: Scan (or Scan and Install) on its own schedules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    operation: Literal["Scan", "ScanAndInstall"] = "Scan"
    scan_schedule: str = DEFAULT_SCAN_SCHEDULE
    install_schedule: str = DEFAULT_INSTALL_SCHEDULE
    schedule_timezone: str = "UTC"
    inventory: str | None = None
    targets: str = "*"
    baselines: dict[str, str] = Field(default_factory=dict)
    reboot_option: Literal["RebootIfNeeded", "NoReboot"] = "RebootIfNeeded"
    hooks: str | None = None
    publish_report: bool = True
    """Write the CSV compliance reports (and upload them to ``report_uri`` when set)."""
    report_uri: str | None = None
    """``s3://bucket/prefix``: each run's reports go to ``prefix/date=.../run_id=.../``."""
    store: str | None = None
    scan_next_interval: bool = False
    """AWS ScanNextInterval: False (default) scans once right when the policy is first
    deployed; True waits for the first scan_schedule tick."""
    install_next_interval: bool = True
    """AWS InstallNextInterval: True (console default) waits for the first install_schedule
    tick; False installs once right when the policy is first deployed."""

    @field_validator("name")
    @classmethod
    def _v_name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("scan_schedule", "install_schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        try:
            sched = parse_schedule(v)
        except ConfigError as err:
            raise ValueError(err.message) from None
        if not isinstance(sched, CronSchedule):
            raise ValueError(f"{v!r}: a patch policy schedule is a cron(...), "
                             "e.g. cron(0 1 * * ? *) for daily at 01:00")
        try:  # a policy deploys as a plain Prefect cron, so it must have an exact one
            policy_schedule(v, "UTC", "schedule")
        except ConfigError as err:
            raise ValueError(err.message) from None
        return v

    @field_validator("schedule_timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return check_timezone(v)

    @field_validator("report_uri")
    @classmethod
    def _uri(cls, v: str | None) -> str | None:
        return _report_uri(v)

    @field_validator("baselines")
    @classmethod
    def _baselines(cls, v: dict[str, str]) -> dict[str, str]:
        known = {o.value for o in OperatingSystem}
        for os_name in v:
            if os_name not in known:
                raise ValueError(f"{os_name!r} is not an operating system; use one of "
                                 f"{', '.join(sorted(known))}")
        return v



def _report_uri(v: str | None) -> str | None:
    if v is None:
        return None
    try:
        normalize_s3_uri(v, source="report_uri")
    except ConfigError as err:
        raise ValueError(err.message) from None
    return v


class WindowTask(_RateControlled):
    """A RUN_COMMAND task (AWS-RunPatchBaseline) registered with a window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    priority: int = Field(default=1, ge=0)
    operation: Literal["Scan", "Install"] = "Scan"
    targets: str | None = None
    """Default: the window's targets."""
    reboot_option: Literal["RebootIfNeeded", "NoReboot", "RebootIfRequired"] = "RebootIfNeeded"
    hooks: str | None = None



class WindowConfig(BaseModel):
    """A maintenance window, its registered targets and its tasks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: MaintenanceWindow
    inventory: str | None = None
    targets: str = "*"
    store: str | None = None
    publish_report: bool = True
    report_uri: str | None = None
    tasks: tuple[WindowTask, ...] = ()

    @field_validator("report_uri")
    @classmethod
    def _uri(cls, v: str | None) -> str | None:
        return _report_uri(v)

    @property
    def name(self) -> str:
        return self.window.name

    def task_targets(self, task: WindowTask) -> str:
        return task.targets or self.targets

    def priority_groups(self) -> list[list[WindowTask]]:
        """Tasks by priority, 0 (highest) first; one list per priority."""
        levels = sorted({t.priority for t in self.tasks})
        return [[t for t in self.tasks if t.priority == p] for p in levels]


class DeploymentsFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    policies: tuple[PatchPolicy, ...] = ()
    windows: tuple[WindowConfig, ...] = ()

    def policy(self, name: str) -> PatchPolicy:
        for p in self.policies:
            if p.name == name:
                return p
        raise ConfigError(f"no patch policy named {name!r}; defined: "
                          f"{', '.join(p.name for p in self.policies) or '(none)'}",
                          source=self.source, field="policies")

    def window(self, name: str) -> WindowConfig:
        for w in self.windows:
            if w.name == name:
                return w
        raise ConfigError(f"no maintenance window named {name!r}; defined: "
                          f"{', '.join(w.name for w in self.windows) or '(none)'}",
                          source=self.source, field="windows")


def _validation_error(err: ValidationError, source: str, prefix: str,
                      model: type[BaseModel]) -> ConfigError:
    e = err.errors()[0]
    msg = str(e["msg"]).removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        msg = unknown_key_message(model, e["loc"])
    loc = ".".join(str(p) for p in e["loc"])
    extra = f" (and {len(err.errors()) - 1} more problem(s))" if len(err.errors()) > 1 else ""
    return ConfigError(msg + extra, source=source, field=f"{prefix}.{loc}" if loc else prefix)


_WINDOW_EXTRAS = ("inventory", "targets", "store", "publish_report", "report_uri", "tasks")


def parse_deployments(data: Any, source: str) -> DeploymentsFile:
    """Validate the parsed YAML of a deployments file."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping with 'policies' and/or 'windows' lists",
                          source=source)
    unknown = sorted(str(key) for key in set(data) - {"policies", "windows"})
    if unknown:
        raise ConfigError(f"unknown key(s) {short_repr(', '.join(unknown))}; only 'policies' "
                          "and 'windows' are allowed", source=source,
                          field=unknown[0][:80])
    for kind in ("policies", "windows"):
        if data.get(kind) is not None and not isinstance(data[kind], list):
            raise ConfigError(f"must be a list of {kind} (each item starts with '- ')",
                              source=source, field=kind)
    policies: list[PatchPolicy] = []
    for i, raw in enumerate(data.get("policies") or []):
        try:
            policies.append(PatchPolicy.model_validate(raw))
        except ValidationError as err:
            raise _validation_error(err, source, f"policies[{i}]", PatchPolicy) from None
    windows: list[WindowConfig] = []
    for i, raw in enumerate(data.get("windows") or []):
        prefix = f"windows[{i}]"
        if not isinstance(raw, dict):
            raise ConfigError("a window must be a mapping", source=source, field=prefix)
        try:
            window = load_window({k: v for k, v in raw.items() if k not in _WINDOW_EXTRAS},
                                 source, also_allowed=_WINDOW_EXTRAS)
        except ConfigError as err:
            raise ConfigError(err.message, source=source,
                              field=f"{prefix}.{err.field}" if err.field else prefix) from None
        if isinstance(window.parsed, RateSchedule) and window.start_date is None:
            raise ConfigError(f"{window.schedule} counts from its start: set start_date "
                              "(ISO-8601 with an offset)", source=source,
                              field=f"{prefix}.start_date")
        try:
            windows.append(WindowConfig.model_validate(
                {"window": window, **{k: raw[k] for k in _WINDOW_EXTRAS if k in raw}}))
        except ValidationError as err:
            raise _validation_error(err, source, prefix, WindowConfig) from None
    for kind, names in (("policies", [p.name for p in policies]),
                        ("windows", [w.name for w in windows])):
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"name {dup[0]!r} is used twice; names must be unique",
                              source=source, field=kind)
    return DeploymentsFile(source=source, policies=tuple(policies), windows=tuple(windows))


def _resolve(loader: InventoryLoader, inventory: str | None, targets: str, source: str,
             field: str) -> list[ResolvedNode]:
    try:
        inv = loader(inventory)
        return select_targets(inv.resolved(), targets, source=field)
    except ConfigError as err:
        detail = err.message if err.source in (None, field) else str(err)  # name the file
        raise ConfigError(f"{detail}; fix the targets or the inventory", source=source,
                          field=field) from None


def overlaps(a: MaintenanceWindow, b: MaintenanceWindow, now: datetime,
             count: int = OVERLAP_OCCURRENCES) -> tuple[datetime, datetime] | None:
    """The first pair of starts (of the next ``count`` each) whose [start, start+duration)
    intersect, or None. Rate schedules count from ``now`` when they have no start_date."""
    runs_a = next_runs(a, now, count, activated_at=now)
    runs_b = next_runs(b, now, count, activated_at=now)
    for sa in runs_a:
        for sb in runs_b:
            if sa < sb + b.duration and sb < sa + a.duration:
                return sa, sb
    return None


def check_deployments(dep: DeploymentsFile, registry: BaselineRegistry,
                      inventory_loader: InventoryLoader,
                      now: datetime | None = None) -> list[str]:
    """Check a parsed deployments file against the baselines and inventories; raise
    ConfigError on the first error, return warnings. (Parsing already checked schedules,
    timezones, cutoff < duration, offsets (cron only) and rate control.) Checks baselines
    (defined, and for the OS they're listed under), and that every target expression selects
    at least one node of its inventory."""
    src = dep.source
    now = now or datetime.now(UTC)
    for i, p in enumerate(dep.policies):
        for os_name, bname in p.baselines.items():
            field = f"policies[{i}].baselines.{os_name}"
            if not registry.has(bname):
                raise ConfigError(f"baseline {bname!r} is not defined; known: "
                                  f"{', '.join(registry.names())}", source=src, field=field)
            actual = registry.get(bname).operating_system
            if actual != os_name:
                raise ConfigError(f"baseline {bname!r} is for {actual}, not {os_name}; "
                                  "list it under its own OS", source=src, field=field)
        schedules = ["scan_schedule"] + (["install_schedule"]
                                         if p.operation == "ScanAndInstall" else [])
        for name in schedules:
            expr = getattr(p, name)
            probe = MaintenanceWindow(name="policy", schedule=expr, duration_hours=1,
                                      schedule_timezone=p.schedule_timezone)
            if not next_runs(probe, now, 1):
                raise ConfigError(f"{expr} never fires (no such date); fix the day or month "
                                  "fields", source=src, field=f"policies[{i}].{name}")
        _resolve(inventory_loader, p.inventory, p.targets, src, f"policies[{i}].targets")
    resolved: list[set[str]] = []
    warnings: list[str] = []
    for i, w in enumerate(dep.windows):
        if not w.tasks:
            raise ConfigError("the window has no tasks; add at least one", source=src,
                              field=f"windows[{i}].tasks")
        names = [t.name for t in w.tasks]
        if dup := sorted({n for n in names if names.count(n) > 1}):
            raise ConfigError(f"task name {dup[0]!r} appears twice; give each task its own "
                              "name (runs and artifacts are labelled by it)", source=src,
                              field=f"windows[{i}].tasks")
        sched = w.window.parsed
        if w.window.enabled and not isinstance(sched, RateSchedule) and not next_runs(
                w.window, now, 1):
            if isinstance(sched, CronSchedule):
                raise ConfigError(
                    f"{w.window.schedule} never fires (no such date"
                    f"{' before end_date' if w.window.end_date else ''}); fix the day or "
                    "month fields", source=src, field=f"windows[{i}].schedule")
            warnings.append(f"{src}: windows[{i}] ({w.name}): {w.window.schedule} is in the "
                            "past or after end_date: the window will not run again")
        ids = {n.id for n in _resolve(inventory_loader, w.inventory, w.targets, src,
                                      f"windows[{i}].targets")}
        for j, t in enumerate(w.tasks):
            if t.targets:
                ids |= {n.id for n in _resolve(inventory_loader, w.inventory, t.targets, src,
                                               f"windows[{i}].tasks[{j}].targets")}
        resolved.append(ids)
    for i, a in enumerate(dep.windows):
        for j in range(i + 1, len(dep.windows)):
            b = dep.windows[j]
            shared = resolved[i] & resolved[j]
            if not shared:
                continue
            hit = overlaps(a.window, b.window, now)
            if hit:
                warnings.append(
                    f"{src}: windows {a.name} and {b.name} overlap on "
                    f"{len(shared)} node(s) ({', '.join(sorted(shared)[:5])}): {a.name} at "
                    f"{hit[0]:%FT%TZ}, {b.name} at {hit[1]:%FT%TZ}; shift one schedule"
                )
    return warnings
