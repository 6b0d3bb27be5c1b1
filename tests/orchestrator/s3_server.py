"""A real S3-compatible HTTP server on 127.0.0.1 for the tests (moto's server), with one
versioned bucket: deleted objects stay listed as versions, so a test can see what was written."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

BUCKET = "moot-test"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "moot-test-id", "AWS_SECRET_ACCESS_KEY": "moot-test-secret"}
"""Made-up credentials the server accepts (it accepts any)."""


@dataclass(frozen=True)
class S3:
    endpoint: str  # host:port

    def uri(self, prefix: str) -> str:
        """An object-store URI for pyarrow (and moot's --segments-uri)."""
        return f"s3://{BUCKET}/{prefix}?endpoint_override={self.endpoint}&scheme=http&region=us-east-1"

    def _client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=f"http://{self.endpoint}",
            region_name="us-east-1",
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def written(self, prefix: str) -> dict[str, int]:
        """Every object ever written under `prefix` (deleted or not): key -> size."""
        pages = self._client().get_paginator("list_object_versions").paginate(Bucket=BUCKET, Prefix=prefix)
        return {v["Key"]: v["Size"] for page in pages for v in page.get("Versions", [])}

    def present(self, prefix: str) -> list[str]:
        """The objects under `prefix` now."""
        listed = self._client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return [o["Key"] for o in listed.get("Contents", [])]


@contextmanager
def s3_server() -> Iterator[S3]:
    """Start the server and its bucket; the test process gets the credentials in its environment."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        host, port = server.get_host_and_port()
        s3 = S3(f"{host}:{port}")
        client = s3._client()
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield s3
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()
