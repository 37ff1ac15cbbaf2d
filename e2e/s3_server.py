"""A real S3-compatible server on loopback (moto's standalone server) with a bucket ready."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import boto3

from gl_devenv.cluster import free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "greenlang-test", "AWS_SECRET_ACCESS_KEY": "greenlang-test-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


@contextlib.contextmanager
def running(bucket: str = "greenlang-agents", host: str = "127.0.0.1") -> Iterator[str]:
    """``host`` is loopback, or the real node's address when agent pods must fetch from it."""
    port = free_port()
    executable = shutil.which("moto_server") or os.path.join(os.path.dirname(sys.executable), "moto_server")
    process = subprocess.Popen([executable, "-H", host, "-p", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    endpoint = f"http://{host}:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(endpoint, timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        os.environ.update(CREDENTIALS)
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)
