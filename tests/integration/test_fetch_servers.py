"""fetch_text against real servers on loopback: a local http.server and a moto S3 server
(local paths and file:// URLs: tests/unit/test_fetch.py)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from patchfleet.config.fetch import fetch_text
from patchfleet.errors import ConfigError

DOC = "patches:\n  - id: 'kernel.x86_64'\n"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/list.yaml":
            body = DOC.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/big":
            body = b"x" * 2000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/to-http":
            self.send_response(302)
            self.send_header("Location", "http://example.com/list.yaml")
            self.end_headers()
        elif self.path == "/to-local":
            self.send_response(302)
            self.send_header("Location", "/list.yaml")
            self.end_headers()
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def http_base() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_loopback_only_when_allowed(http_base: str) -> None:
    url = f"{http_base}/list.yaml"
    with pytest.raises(ConfigError, match="plain http is not allowed"):
        fetch_text(url)
    assert fetch_text(url, allow_http_loopback=True) == (DOC, url)
    with pytest.raises(ConfigError, match="plain http is not allowed"):
        fetch_text("http://example.com/list.yaml", allow_http_loopback=True)


def test_http_errors_and_limits(http_base: str) -> None:
    with pytest.raises(ConfigError, match="HTTP 404"):
        fetch_text(f"{http_base}/nope", allow_http_loopback=True)
    with pytest.raises(ConfigError, match="larger than 1000 bytes"):
        fetch_text(f"{http_base}/big", max_bytes=1000, allow_http_loopback=True)
    with pytest.raises(ConfigError, match=r"redirected to http://example\.com"):
        fetch_text(f"{http_base}/to-http", allow_http_loopback=True)
    assert fetch_text(f"{http_base}/to-local", allow_http_loopback=True)[0] == DOC


@pytest.fixture(scope="session")
def s3_endpoint(moto_endpoint: str) -> str:
    return moto_endpoint


def _client_factory(endpoint: str) -> Any:
    import boto3

    def make() -> Any:
        return boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return make


def test_s3_get_object(s3_endpoint: str) -> None:
    make = _client_factory(s3_endpoint)
    client = make()
    client.create_bucket(Bucket="patch-lists")
    client.put_object(Bucket="patch-lists", Key="lists/web.yaml", Body=DOC.encode())
    client.put_object(Bucket="patch-lists", Key="big", Body=b"x" * 2000)
    url = "s3://patch-lists/lists/web.yaml"
    assert fetch_text(url, s3_client_factory=make) == (DOC, url)
    with pytest.raises(ConfigError, match="object does not exist"):
        fetch_text("s3://patch-lists/none.yaml", s3_client_factory=make)
    with pytest.raises(ConfigError, match="bucket does not exist"):
        fetch_text("s3://no-such-bucket/x.yaml", s3_client_factory=make)
    with pytest.raises(ConfigError, match="larger than 1000 bytes"):
        fetch_text("s3://patch-lists/big", max_bytes=1000, s3_client_factory=make)
    with pytest.raises(ConfigError, match="needs a bucket and a key"):
        fetch_text("s3://patch-lists/", s3_client_factory=make)


def test_s3_uses_aws_endpoint_url(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _client_factory(s3_endpoint)().create_bucket(Bucket="env-bucket")
    _client_factory(s3_endpoint)().put_object(Bucket="env-bucket", Key="k.yaml", Body=b"a: 1\n")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert fetch_text("s3://env-bucket/k.yaml")[0] == "a: 1\n"
