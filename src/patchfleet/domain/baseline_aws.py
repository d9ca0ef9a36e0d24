"""AWS `get-patch-baseline` JSON <-> Baseline, as plain data (files: config/baselines.py).

Import reads what ``aws ssm get-patch-baseline`` prints (one object), or a BaselineOverride
document (a JSON array of such objects, one per OS). Export writes the same PascalCase shape, so a
baseline survives JSON -> patchfleet -> JSON unchanged on every baseline field, and the output is
also valid input for ``aws ssm create-patch-baseline --cli-input-json``.

Fields with no place in a patchfleet baseline are dropped on import: ``BaselineId``,
``CreatedDate``, ``ModifiedDate``, ``PatchGroups`` (patch groups live in the inventory),
``ClientToken`` and ``ResponseMetadata``. When ``Name`` is missing, the ``BaselineId`` (the part
after the last ``/`` of an ARN) becomes the name. A missing ``OperatingSystem`` is ``WINDOWS``,
as in AWS. ``Tags`` ([{Key, Value}]) become the ``tags`` mapping. Any other unknown key is an
error, so nothing is lost silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patchfleet.domain.baseline import Baseline, PatchFilter, PatchRule, parse_baseline
from patchfleet.domain.model_errors import short_repr
from patchfleet.errors import ConfigError

__all__ = [
    "baseline_from_aws_json",
    "baselines_from_aws_json",
    "to_aws_json",
]

EXTENSION_KEY = "PatchfleetStagedApproval"
"""The one non-AWS key patchfleet writes in AWS JSON (its staged_approval extension); AWS's API
would refuse it, so ``baseline export --strict-aws`` refuses a baseline that needs it."""
_IGNORED = frozenset(
    {"BaselineId", "CreatedDate", "ModifiedDate", "PatchGroups", "ClientToken", "ResponseMetadata"}
)
_SIMPLE = {
    "Name": "name",
    "OperatingSystem": "operating_system",
    "Description": "description",
    "ApprovedPatches": "approved_patches",
    "ApprovedPatchesComplianceLevel": "approved_patches_compliance_level",
    "ApprovedPatchesEnableNonSecurity": "approved_patches_enable_non_security",
    "RejectedPatches": "rejected_patches",
    "RejectedPatchesAction": "rejected_patches_action",
    "AvailableSecurityUpdatesComplianceStatus": "available_security_updates_compliance_status",
    EXTENSION_KEY: "staged_approval",
}
_RULE = {
    "ComplianceLevel": "compliance_level",
    "ApproveAfterDays": "approve_after_days",
    "ApproveUntilDate": "approve_until_date",
    "EnableNonSecurity": "enable_non_security",
}
_SOURCE = {"Name": "name", "Products": "products", "Configuration": "configuration"}
_FILTER = {"Key": "key", "Values": "values"}


_BOOLEANS = frozenset({"EnableNonSecurity", "ApprovedPatchesEnableNonSecurity"})
"""AWS JSON booleans: pydantic's lax booleans would take the string "yes" as true."""


def _pascal(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def _aws_path(path: str) -> str:
    """``approval_rules.0.patch_filters.1.key`` -> ``ApprovalRules.PatchRules.0.PatchFilterGroup
    .PatchFilters.1.Key``."""
    out: list[str] = []
    for part in path.split("."):
        if part == "global_filters":
            out += ["GlobalFilters", "PatchFilters"]
        elif part == "approval_rules":
            out += ["ApprovalRules", "PatchRules"]
        elif part == "patch_filters":
            out += ["PatchFilterGroup", "PatchFilters"]
        elif part.isdigit() or part == "(top level)":
            out.append(part)
        else:
            out.append(_pascal(part))
    return ".".join(out)


class _Reader:
    """Walks one AWS object into snake_case data, reporting unknown keys with their AWS path."""

    def __init__(self, source: str, prefix: str) -> None:
        self.source = source
        self.prefix = prefix

    def fail(self, path: str, message: str) -> ConfigError:
        return ConfigError(message, source=self.source, field=self.prefix + path)

    def mapping(self, value: Any, path: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected a JSON object, got {type(value).__name__}")
        return value

    def array(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected a JSON array, got {type(value).__name__}")
        return value

    def fields(
        self, obj: Mapping[str, Any], names: Mapping[str, str], path: str, extra: set[str]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if key in names:
                if key in _BOOLEANS and value is not None and not isinstance(value, bool):
                    raise self.fail(f"{path}{key}", "must be a JSON boolean (true or false), "
                                    f"not {short_repr(value)}")
                if value is not None:
                    out[names[key]] = value
            elif key not in extra:
                known = ", ".join([*names, *sorted(extra - _IGNORED)])
                raise self.fail(
                    f"{path}{key}", f"unknown key in AWS baseline JSON; known keys: {known}"
                )
        return out

    def filters(self, group: Any, path: str) -> list[dict[str, Any]]:
        group = self.mapping(group, path)
        self.fields(group, {}, f"{path}.", {"PatchFilters"})
        given = group.get("PatchFilters")  # {} or "" is the wrong type, not "no filters"
        items = self.array([] if given is None else given, f"{path}.PatchFilters")
        return [
            self.fields(
                self.mapping(f, f"{path}.PatchFilters.{i}"),
                _FILTER,
                f"{path}.PatchFilters.{i}.",
                set(),
            )
            for i, f in enumerate(items)
        ]

    def baseline(self, obj: Any) -> dict[str, Any]:
        obj = self.mapping(obj, "")
        extra = {"GlobalFilters", "ApprovalRules", "Sources", "Tags", *_IGNORED}
        data = self.fields(obj, _SIMPLE, "", extra)
        if "name" not in data and isinstance(obj.get("BaselineId"), str):
            data["name"] = obj["BaselineId"].rsplit("/", 1)[-1]
        data.setdefault("operating_system", "WINDOWS")
        if obj.get("GlobalFilters") is not None:
            data["global_filters"] = self.filters(obj["GlobalFilters"], "GlobalFilters")
        if obj.get("ApprovalRules") is not None:
            rules_obj = self.mapping(obj["ApprovalRules"], "ApprovalRules")
            self.fields(rules_obj, {}, "ApprovalRules.", {"PatchRules"})
            rules = []
            patch_rules = rules_obj.get("PatchRules")
            items = self.array([] if patch_rules is None else patch_rules,
                               "ApprovalRules.PatchRules")
            for i, r in enumerate(items):
                path = f"ApprovalRules.PatchRules.{i}"
                r = self.mapping(r, path)
                rule = self.fields(r, _RULE, f"{path}.", {"PatchFilterGroup"})
                if r.get("PatchFilterGroup") is not None:
                    rule["patch_filters"] = self.filters(
                        r["PatchFilterGroup"], f"{path}.PatchFilterGroup"
                    )
                rules.append(rule)
            data["approval_rules"] = rules
        if obj.get("Sources") is not None:
            data["sources"] = [
                self.fields(self.mapping(s, f"Sources.{i}"), _SOURCE, f"Sources.{i}.", set())
                for i, s in enumerate(self.array(obj["Sources"], "Sources"))
            ]
        if obj.get("Tags") is not None:
            tags: dict[str, Any] = {}
            for i, t in enumerate(self.array(obj["Tags"], "Tags")):
                t = self.fields(
                    self.mapping(t, f"Tags.{i}"), {"Key": "k", "Value": "v"}, f"Tags.{i}.", set()
                )
                if "k" not in t:
                    raise self.fail(f"Tags.{i}.Key", "required field is missing")
                tags[t["k"]] = t.get("v", "")
            data["tags"] = tags
        return data


def baseline_from_aws_json(obj: Any, source: str = "(AWS JSON)", prefix: str = "") -> Baseline:
    """One ``get-patch-baseline`` object -> Baseline. Errors name ``source`` and the AWS path."""
    data = _Reader(source, prefix).baseline(obj)
    return parse_baseline(data, source, rename=lambda p: prefix + _aws_path(p))


def baselines_from_aws_json(data: Any, source: str = "(AWS JSON)") -> list[Baseline]:
    """A ``get-patch-baseline`` object, or a BaselineOverride array (at most one per OS)."""
    if isinstance(data, Mapping):
        return [baseline_from_aws_json(data, source)]
    if not isinstance(data, list):
        raise ConfigError(
            "expected a get-patch-baseline JSON object or a BaselineOverride array of them",
            source=source,
        )
    if not data:
        raise ConfigError("the BaselineOverride array is empty: give at least one "
                          "get-patch-baseline object", source=source)
    out: list[Baseline] = []
    first: dict[str, int] = {}
    for i, obj in enumerate(data):
        b = baseline_from_aws_json(obj, source, prefix=f"[{i}].")
        if b.operating_system in first:
            raise ConfigError(
                f"entries {first[b.operating_system]} and {i} are both for "
                f"{b.operating_system.value}; a BaselineOverride holds one baseline per OS",
                source=source,
                field=f"[{i}].OperatingSystem",
            )
        first[b.operating_system] = i
        out.append(b)
    return out


def _filters_json(filters: tuple[PatchFilter, ...]) -> dict[str, Any]:
    return {"PatchFilters": [{"Key": f.key, "Values": list(f.values)} for f in filters]}


def _rule_json(rule: PatchRule) -> dict[str, Any]:
    out: dict[str, Any] = {
        "PatchFilterGroup": _filters_json(rule.patch_filters),
        "ComplianceLevel": rule.compliance_level.value,
    }
    if rule.approve_after_days is not None:
        out["ApproveAfterDays"] = rule.approve_after_days
    if rule.approve_until_date is not None:
        out["ApproveUntilDate"] = rule.approve_until_date.isoformat()
    out["EnableNonSecurity"] = rule.enable_non_security
    return out


def to_aws_json(b: Baseline) -> dict[str, Any]:
    """Baseline -> the PascalCase object ``get-patch-baseline`` prints (minus the read-only
    BaselineId, dates and PatchGroups)."""
    out: dict[str, Any] = {
        "Name": b.name,
        "OperatingSystem": b.operating_system.value,
        "GlobalFilters": _filters_json(b.global_filters),
        "ApprovalRules": {"PatchRules": [_rule_json(r) for r in b.approval_rules]},
        "ApprovedPatches": list(b.approved_patches),
        "ApprovedPatchesComplianceLevel": b.approved_patches_compliance_level.value,
        "ApprovedPatchesEnableNonSecurity": b.approved_patches_enable_non_security,
        "RejectedPatches": list(b.rejected_patches),
        "RejectedPatchesAction": b.rejected_patches_action.value,
    }
    if b.description is not None:
        out["Description"] = b.description
    out["Sources"] = [
        {"Name": s.name, "Products": list(s.products), "Configuration": s.configuration}
        for s in b.sources
    ]
    if b.available_security_updates_compliance_status is not None:
        out["AvailableSecurityUpdatesComplianceStatus"] = (
            b.available_security_updates_compliance_status.value
        )
    if b.tags:
        out["Tags"] = [{"Key": k, "Value": v} for k, v in b.tags.items()]
    if b.staged_approval:
        out[EXTENSION_KEY] = True
    return out

