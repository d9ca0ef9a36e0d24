"""Where the store is (``--store``, ``$PATCHFLEET_STORE``): a folder or ``s3://bucket/prefix``;
and the S3 store's commit marker, which is plain data. No server: the S3 side is
tests/integration/test_store_s3.py."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from patchfleet.errors import ConfigError, StoreError
from patchfleet.store import object_store, writer
from patchfleet.store.location import StoreLocation, s3_location
from patchfleet.store.object_store import CommitMarker, StoredFile
from patchfleet.store.schema import TABLES, file_schema


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PATCHFLEET_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_a_folder_is_a_local_store(tmp_path: Path) -> None:
    location = StoreLocation.parse(str(tmp_path / "store"))
    assert (location.is_s3, location.local, location.uri) == (
        False, tmp_path / "store", str(tmp_path / "store"))
    assert location.work_dir == tmp_path / "store"
    assert s3_location(location) is None
    assert StoreLocation.parse("~/pf").local == tmp_path / "home" / "pf"
    assert StoreLocation.parse("relative/store").local == Path("relative/store")


@pytest.mark.parametrize(
    ("value", "bucket", "prefix", "uri"),
    [
        ("s3://my-bucket", "my-bucket", "", "s3://my-bucket"),
        ("s3://my-bucket/", "my-bucket", "", "s3://my-bucket"),
        ("s3://my-bucket/fleet/store/", "my-bucket", "fleet/store", "s3://my-bucket/fleet/store"),
        ("S3://my.bucket/p", "my.bucket", "p", "s3://my.bucket/p"),
    ],
)
def test_an_s3_uri_is_a_bucket_and_prefix(value: str, bucket: str, prefix: str, uri: str,
                                          tmp_path: Path) -> None:
    location = StoreLocation.parse(value)
    assert (location.is_s3, location.bucket, location.prefix, location.uri, str(location)) == (
        True, bucket, prefix, uri, uri)
    assert location.work_dir == tmp_path / "xdg" / "patchfleet"
    assert location.key("_commits/run_id=a.json") == (
        f"{prefix}/_commits/run_id=a.json" if prefix else "_commits/run_id=a.json")
    assert location.uri_of("x.json") == f"{uri}/x.json"
    assert s3_location(value) == location == StoreLocation.of(value)
    with pytest.raises(ValueError, match="not a local store"):
        location.local  # noqa: B018


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("s3://Bad_Bucket/x", "--store: 'Bad_Bucket' is not a valid bucket name"),
        ("s3://ab", "'ab' is not a valid bucket name"),
        ("s3:/my-bucket/x", "a compliance store is a local folder or s3://BUCKET/PREFIX"),
        ("s3:my-bucket", "a compliance store is a local folder or s3://BUCKET/PREFIX"),
        ("gs://my-bucket/x", "'gs://my-bucket/x': a compliance store is a local folder"),
        ("file:///srv/store", "a compliance store is a local folder or s3://"),
        ("s3://my-bucket/a//b", "has an empty, '.' or '..' part"),
        ("s3://my-bucket/a b", "has a space"),
        ("s3://my-bucket:9000/x", "credentials and ports don't belong in the URI"),
        ("", "--store: is empty"),
    ],
)
def test_bad_values_say_what_a_store_is(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        StoreLocation.parse(value)
    assert message in str(caught.value)
    assert str(caught.value).startswith("--store: ")


def test_credentials_in_a_uri_are_never_shown() -> None:
    for value in ("s3://AKIA:s3cr3t@my-bucket/x", "https://AKIA:s3cr3t@host/x"):
        with pytest.raises(ConfigError) as caught:
            StoreLocation.parse(value)
        assert "s3cr3t" not in str(caught.value)


def test_resolution_order_flag_then_environment_then_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert StoreLocation.resolve(None).local == tmp_path / "xdg" / "patchfleet" / "store"
    monkeypatch.setenv("PATCHFLEET_STORE", "s3://env-bucket/pf")
    assert StoreLocation.resolve(None) == StoreLocation(bucket="env-bucket", prefix="pf")
    assert StoreLocation.resolve(str(tmp_path)).local == tmp_path
    monkeypatch.setenv("PATCHFLEET_STORE", "s3://Env_Bucket")
    with pytest.raises(ConfigError, match=r"^PATCHFLEET_STORE: 'Env_Bucket' is not a valid"):
        StoreLocation.resolve(None)


def test_s3_files_are_laid_out_as_local_ones() -> None:
    assert object_store.PART_NAME == writer.PART_NAME
    day = date(2024, 5, 1)
    assert object_store.partition_path("patch_states", day, "run-a") == (
        writer.partition_dir(Path(""), "patch_states", day, "run-a").as_posix())
    assert object_store.marker_path("run-a") == "_commits/run_id=run-a.json"


def test_dataset_schema_is_the_file_schema_nullable_plus_partitions() -> None:
    for table in TABLES:
        schema = object_store.dataset_schema(table)
        assert schema.names == [*file_schema(table).names, "date", "run_id"]
        assert all(field.nullable for field in schema)
        assert str(schema.field("date").type) == "date32[day]"


def test_commit_marker_round_trips_and_a_bad_one_says_how_to_recover() -> None:
    marker = CommitMarker(
        run_id="run-a", date=date(2024, 5, 1), schema_version=1,
        written_at=datetime(2024, 5, 1, 10, 0, 5, tzinfo=UTC),
        tables={"patch_states": (StoredFile("patch_states/x/part-0.parquet", 7, 1234),),
                "node_summaries": (StoredFile("node_summaries/x/part-0.parquet", 2, 99),)})
    data = marker.to_json()
    assert b'"written_at": "2024-05-01T10:00:05Z"' in data
    assert b'"rows": 7' in data and b'"bytes": 1234' in data
    assert CommitMarker.from_json(data, "m") == marker
    assert marker.rows == {"patch_states": 7, "node_summaries": 2}
    for bad in (b"{", b"[]", b'{"run_id": "run-a"}'):
        with pytest.raises(StoreError, match=r"^s3://b/_commits/run_id=run-a\.json is not a "
                           r"commit marker .*delete it to hide that run"):  # fmt: skip
            CommitMarker.from_json(bad, "s3://b/_commits/run_id=run-a.json")
