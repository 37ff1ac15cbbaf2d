"""The runtime's settings: environment variables (as a Deployment sets them), each also a flag."""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path

DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
S3_URI_RE = re.compile(r"^s3://([^/]+)/(.+)$")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Config:
    agent: str | None
    version: str | None
    artifact_uri: str | None
    artifact_file: Path | None
    artifact_digest: str
    s3_endpoint: str | None
    host: str
    port: int
    work_dir: Path
    drain_seconds: float
    log_level: str


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="gl-agent-runtime",
        description="Serve one agent version's capabilities over HTTP: fetch its artifact from S3, verify the "
                    "sha256, load the entry point, answer POST /v1/capabilities/{name}:invoke.",
        epilog="Example: GL_ARTIFACT_URI=s3://greenlang-agents/sha256/<hex> GL_ARTIFACT_DIGEST=sha256:<hex> "
               "gl-agent-runtime --agent climate-team/gl-cbam-calculator-v2 --version 2.3.1   "
               "(every flag has the environment variable shown; see docs/runtime.md)")
    parser.add_argument("--agent", default=env("GL_AGENT"), help="$GL_AGENT: namespace/agent, a metrics label")
    parser.add_argument("--version", default=env("GL_AGENT_VERSION"), help="$GL_AGENT_VERSION, a metrics label")
    parser.add_argument("--artifact-uri", default=env("GL_ARTIFACT_URI"), help="$GL_ARTIFACT_URI: s3://bucket/key")
    parser.add_argument("--artifact-file", default=env("GL_ARTIFACT_FILE"),
                        help="$GL_ARTIFACT_FILE: a local artifact instead of S3 (still digest-verified)")
    parser.add_argument("--artifact-digest", default=env("GL_ARTIFACT_DIGEST"),
                        help="$GL_ARTIFACT_DIGEST: sha256:<64 hex> the artifact must have")
    parser.add_argument("--s3-endpoint", default=env("GL_S3_ENDPOINT"), help="$GL_S3_ENDPOINT: S3-compatible URL")
    parser.add_argument("--host", default=env("GL_HOST", "0.0.0.0"), help="$GL_HOST (default 0.0.0.0)")
    parser.add_argument("--port", default=env("GL_PORT", "8080"), help="$GL_PORT (default 8080)")
    parser.add_argument("--work-dir", default=env("GL_WORK_DIR", "/tmp/agent"),
                        help="$GL_WORK_DIR: where the artifact is unpacked (default /tmp/agent)")
    parser.add_argument("--drain-seconds", default=env("GL_DRAIN_SECONDS", "20"),
                        help="$GL_DRAIN_SECONDS: after SIGTERM, how long in-flight requests may take (default 20)")
    parser.add_argument("--log-level", default=env("GL_LOG_LEVEL", "info"), help="$GL_LOG_LEVEL (default info)")
    return parser


def _number(value: str, name: str, kind: type) -> float | int:
    try:
        number = kind(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number") from None
    if number < 0:
        raise ConfigError(f"{name}={value!r} must not be negative")
    return number


def parse(argv: list[str] | None = None) -> Config:
    args = _parser().parse_args(argv)
    if not args.artifact_digest:
        raise ConfigError("GL_ARTIFACT_DIGEST (--artifact-digest) is required: the runtime loads only an artifact "
                          "whose sha256 it was told, e.g. sha256:5fc3...")
    if not DIGEST_RE.match(args.artifact_digest):
        raise ConfigError(f"GL_ARTIFACT_DIGEST={args.artifact_digest!r} must be sha256:<64 lowercase hex>")
    if bool(args.artifact_uri) == bool(args.artifact_file):
        raise ConfigError("give exactly one of GL_ARTIFACT_URI (--artifact-uri s3://bucket/key) and --artifact-file")
    if args.artifact_uri and not S3_URI_RE.match(args.artifact_uri):
        raise ConfigError(f"GL_ARTIFACT_URI={args.artifact_uri!r} must be s3://bucket/key")
    port = int(_number(args.port, "GL_PORT", int))
    if not 0 < port < 65536:
        raise ConfigError(f"GL_PORT={args.port!r} must be between 1 and 65535")
    return Config(agent=args.agent or None, version=args.version or None, artifact_uri=args.artifact_uri,
                  artifact_file=Path(args.artifact_file) if args.artifact_file else None,
                  artifact_digest=args.artifact_digest, s3_endpoint=args.s3_endpoint or None, host=args.host,
                  port=port, work_dir=Path(args.work_dir),
                  drain_seconds=float(_number(args.drain_seconds, "GL_DRAIN_SECONDS", float)),
                  log_level=args.log_level)
