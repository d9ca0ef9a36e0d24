"""The typed request of a run: AWS names and enums, checked where the run is created."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from patchfleet.domain.records import ExecutionType
from patchfleet.domain.requests import Operation, PatchRequest, RebootOption
from patchfleet.errors import ConfigError
from patchfleet.ops.plan import OPERATIONS, REBOOT_OPTIONS


def test_enums_hold_exactly_the_accepted_values() -> None:
    assert tuple(Operation) == OPERATIONS
    assert tuple(RebootOption) == REBOOT_OPTIONS


@pytest.mark.parametrize(("field", "bad"), [("operation", "Instal"),
                                            ("reboot_option", "RebootAlways"),
                                            ("execution_type", "CRON")])
def test_bad_enum_values_are_refused(field: str, bad: str) -> None:
    with pytest.raises(ValidationError, match=field):
        PatchRequest(**{field: bad})


def test_deadline_is_an_aware_utc_instant() -> None:
    req = PatchRequest(deadline="2026-11-03T07:00:00+02:00")
    assert req.deadline == datetime(2026, 11, 3, 5, tzinfo=UTC)
    assert PatchRequest(deadline=datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=1)))
                        ).deadline == datetime(2025, 12, 31, 23, tzinfo=UTC)
    for bad, says in (("tomorrow", "is not a date and time"),
                      ("2026-11-03T05:00:00", "has no UTC offset"),
                      (datetime(2026, 1, 1), "has no UTC offset")):
        with pytest.raises(ConfigError) as err:
            PatchRequest(deadline=bad)
        assert err.value.source == "deadline" and says in str(err.value)
        assert "+00:00" in str(err.value)


def test_flow_parameters_round_trip() -> None:
    req = PatchRequest(operation="Install", targets="group:web", reboot_option="NoReboot",
                       baseline_override={"DEBIAN": "AWS-DebianDefaultPatchBaseline"},
                       execution_type=ExecutionType.PATCH_POLICY,
                       deadline="2026-11-03T05:00:00+00:00")
    params = req.flow_parameters()
    assert params["operation"] == "Install" and params["reboot_option"] == "NoReboot"
    assert params["execution_type"] == "PATCH_POLICY"
    assert PatchRequest(**params) == req
    assert req.install and not PatchRequest().install


def test_the_flow_schema_refuses_a_bad_operation() -> None:
    """What the Prefect server checks when a deployment run is created (enforced schema)."""
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.schema_tools import ValidationError as SchemaError
    from prefect.utilities.schema_tools import validate

    from flows.patch_nodes import patch_nodes

    schema = parameter_schema(patch_nodes.fn).model_dump_for_openapi()
    validate({"operation": "Install", "targets": "web-*"}, schema, raise_on_error=True)
    for params in ({"operation": "Instal"}, {"reboot_option": "Always"},
                   {"execution_type": "CRON"}):
        with pytest.raises(SchemaError):
            validate(params, schema, raise_on_error=True)
