"""`gl agent list`, `get`, `publish`, `pull` and `search`: agents and their versions as objects, their
artifacts, and the search over them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from gl_cli import kube, query_api
from gl_cli.app import (AllNamespaces, Context, Debug, Kubeconfig, Namespace, Output, check_output, guarded, resource,
                        session, state_of)
from gl_cli.output import emit, emit_object, err, escape, fail, out

if TYPE_CHECKING:
    from gl_api import artifact as gl_artifact
    from gl_cli import artifacts

# Each command imports the models, the artifact format, boto3 and rich's progress bars itself, when it
# runs: `gl --help` and the read commands start without them (docs/benchmarks.md, cli-startup).

commands = typer.Typer()


def _agent_row(a: dict[str, Any]) -> dict[str, Any]:
    status = a.get("status") or {}
    return {"name": a["metadata"]["name"], "namespace": a["metadata"]["namespace"],
            "displayName": a["spec"]["displayName"], "domain": a["spec"]["domain"], "type": a["spec"]["type"],
            "visibility": a["spec"].get("visibility"), "latestVersion": status.get("latestVersion"),
            "certifiedVersion": status.get("certifiedVersion")}


def _version_row(v: dict[str, Any]) -> dict[str, Any]:
    return {"ref": f"{v['spec']['agent']}@{v['spec']['version']}", "namespace": v["metadata"]["namespace"],
            "agent": v["spec"]["agent"], "version": v["spec"]["version"], "state": state_of(v),
            "image": v["spec"].get("image"), "artifact": (v["spec"].get("artifact") or {}).get("uri")}


@commands.command("list")
@guarded
def agent_list(domain: Annotated[Optional[str], typer.Option(help="filter by domain (prefix)")] = None,
               type_: Annotated[Optional[str], typer.Option("--type", help="filter by type")] = None,
               state: Annotated[Optional[str], typer.Option(help="show agents with a version in this state")] = None,
               all_namespaces: AllNamespaces = False, namespace: Namespace = None, output: Output = "table",
               kubeconfig: Kubeconfig = None, context: Context = None, debug: Debug = False) -> None:
    """List agents. [bold]Example[/bold]: gl agent list -A --domain sustainability --state certified"""
    from gl_api import labels

    check_output(output)
    s = session(kubeconfig, context, namespace)
    where = None if all_namespaces else s.namespace
    agents = kube.list_objects(s.api, kube.AGENT, where)
    if domain:
        agents = [a for a in agents if a["spec"]["domain"] == domain or a["spec"]["domain"].startswith(domain + ".")]
    if type_:
        agents = [a for a in agents if a["spec"]["type"] == type_]
    if state:
        versions = kube.list_objects(s.api, kube.AGENT_VERSION, where, label_selector=f"{labels.STATE}={state}")
        having = {(v["metadata"]["namespace"], v["spec"]["agent"]) for v in versions}
        agents = [a for a in agents if (a["metadata"]["namespace"], a["metadata"]["name"]) in having]
    emit([_agent_row(a) for a in agents],
         [("Namespace", "namespace"), ("Name", "name"), ("Display Name", "displayName"), ("Domain", "domain"),
          ("Type", "type"), ("Latest", "latestVersion"), ("Certified", "certifiedVersion")],
         output, kind="AgentList")


@commands.command("get")
@guarded
def agent_get(reference: Annotated[str, typer.Argument(metavar="AGENT[@VERSION]")], namespace: Namespace = None,
              output: Output = "table", kubeconfig: Kubeconfig = None, context: Context = None,
              debug: Debug = False) -> None:
    """Show an agent and its versions, or one version. [bold]Example[/bold]: gl agent get gl-cbam-calculator-v2@2.3.1"""
    from rich.table import Table

    from gl_api import naming, semver

    check_output(output)
    s = session(kubeconfig, context, namespace)
    if "@" in reference:
        ref = naming.AgentVersionRef.parse(reference)
        version = kube.get(s.api, kube.AGENT_VERSION, s.namespace, ref.object_name)
        if version is None:
            fail(f"{ref} is not published in namespace {s.namespace}; see `gl agent get {ref.agent}`")
        if output != "table":
            emit_object(version, output)
            return
        row = _version_row(version)
        table = Table(title=str(ref), show_header=False)
        for key in ("agent", "version", "state", "image", "artifact"):
            table.add_row(key, escape(str(row.get(key) or "")))
        for entry in (version.get("status") or {}).get("stateHistory") or []:
            table.add_row("history", escape(f"{entry['at']} {entry.get('from') or '-'} -> {entry['to']} by "
                                            f"{entry.get('by')}: {entry.get('reason') or ''}"))
        out.print(table)
        return
    found = kube.get(s.api, kube.AGENT, s.namespace, reference)
    if found is None:
        fail(f"agent {reference} does not exist in namespace {s.namespace}; see `gl agent list -A`")
    versions = kube.list_objects(s.api, kube.AGENT_VERSION, s.namespace, field_selector=f"spec.agent={reference}")
    versions.sort(key=lambda v: semver.Version.parse(v["spec"]["version"]), reverse=True)
    if output != "table":
        emit_object({**found, "versions": [_version_row(v) for v in versions]}, output)
        return
    emit([_version_row(v) for v in versions], [("Version", "version"), ("State", "state"), ("Image", "image")],
         output, title=f"{found['spec']['displayName']} ({reference}, {found['spec']['domain']})")


def _project(project: Path) -> tuple[gl_artifact.Manifest, bytes]:
    """The project's manifest and its packed artifact, or one clear error line."""
    from gl_api import artifact as gl_artifact

    if not project.is_dir():
        fail(f"{project} is not a directory; give an agent project directory holding {gl_artifact.MANIFEST}")
    try:
        return gl_artifact.read_manifest(project), gl_artifact.pack(project)
    except gl_artifact.ArtifactError as error:
        fail(str(error))


def _upload(data: bytes | Path, what: str, bucket: str, s3_endpoint: str | None) -> artifacts.Uploaded:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from gl_cli import artifacts

    size = len(data) if isinstance(data, bytes) else data.stat().st_size
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=err.console, transient=False) as progress:
        task = progress.add_task(f"uploading {what}", total=size)
        advance = lambda n: progress.advance(task, n)  # noqa: E731
        if isinstance(data, bytes):
            return artifacts.upload_bytes(data, what, bucket, s3_endpoint, advance)
        return artifacts.upload(data, bucket, s3_endpoint, advance)


@commands.command("publish")
@guarded
def agent_publish(
    project: Annotated[Optional[Path], typer.Argument(
        metavar="DIR", show_default=False,
        help="an agent project (greenlang-agent.yaml and its source): packed into the artifact, which gives the "
             "agent id, version, capabilities, runtime and the Agent to create (default: the current directory, "
             "when it holds greenlang-agent.yaml and no --artifact is given)")] = None,
    name: Annotated[Optional[str], typer.Option(
        "--name", "--display-name", help="the agent's display name, e.g. \"CBAM Carbon Calculator\", given to a new "
                                         "Agent; without --id or a project, the agent id is derived from it")] = None,
    agent_id: Annotated[Optional[str], typer.Option(
        "--id", help="the agent id, a DNS label, e.g. gl-cbam-calculator-v2 (default: the project's, else derived "
                     "from --name: lowercase, other characters to '-', at most 63)")] = None,
    version: Annotated[Optional[str], typer.Option("--version", help="semantic version, e.g. 2.4.0 (default: the "
                                                                     "project's)")] = None,
    domain: Annotated[Optional[str], typer.Option(help="domain for a new Agent, e.g. sustainability.cbam")] = None,
    type_: Annotated[Optional[str], typer.Option("--type", help="type for a new Agent, e.g. calculator")] = None,
    description: Annotated[Optional[str], typer.Option(help="for a new Agent")] = None,
    artifact: Annotated[Optional[Path], typer.Option(help="file to upload to S3 (content-addressed); not with DIR")] = None,
    image: Annotated[Optional[str], typer.Option(help="container image pinned by digest: REF@sha256:...")] = None,
    capabilities: Annotated[Optional[Path], typer.Option(help="YAML list of capabilities")] = None,
    file: Annotated[Optional[Path], typer.Option("-f", "--file", help="an agent.yaml with Agent and AgentVersion "
                                                                      "fields to start from")] = None,
    bucket: Annotated[Optional[str], typer.Option(envvar="GL_S3_BUCKET", help="S3 bucket for artifacts")] = None,
    s3_endpoint: Annotated[Optional[str], typer.Option("--s3-endpoint", envvar="GL_S3_ENDPOINT",
                                                       help="S3-compatible endpoint URL")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the objects, create nothing")] = False,
    wait: Annotated[float, typer.Option(help="seconds to wait for the version to be accepted")] = 60,
    namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None, debug: Debug = False,
) -> None:
    """Upload the artifact, create the Agent if missing and the AgentVersion, wait until it is accepted.

    [bold]Example[/bold]: gl agent publish examples/agents/cbam-calculator -n climate-team
    (packs the project, uploads it to $GL_S3_BUCKET and publishes gl-cbam-calculator-v2@2.3.1 as its
    greenlang-agent.yaml says; flags override the manifest). Without DIR and --artifact, the current
    directory is the project when it holds greenlang-agent.yaml.

    [bold]Example[/bold]: gl agent publish --name "CBAM Carbon Calculator" --id gl-cbam-calculator-v2 --version 2.4.0
    --domain sustainability.cbam --type calculator --artifact dist/cbam.tar.gz
    --image registry.example.com/cbam@sha256:...
    """
    import yaml

    from gl_api import artifact as gl_artifact
    from gl_api import conditions, kinds, naming
    from gl_api.models import AgentSpec, AgentVersionSpec, Artifact, ConditionStatus
    from gl_cli import artifacts

    manifest, packed = None, None
    if project is None and artifact is None:
        if (Path.cwd() / gl_artifact.MANIFEST).is_file():
            project = Path.cwd()
        elif image is None:
            fail(f"nothing to publish: give an agent project DIR, --artifact FILE or --image REF@sha256:..., or run "
                 f"in an agent project directory (one holding {gl_artifact.MANIFEST})")
    if project is not None:
        if artifact:
            fail("give either a project DIR or --artifact, not both: the project is packed into the artifact")
        manifest, packed = _project(project)
    if agent_id:
        why = "--id"
    elif manifest:
        agent_id, why = manifest.name, f"the name in {gl_artifact.MANIFEST}"
    elif name:
        agent_id, why = naming.agent_id(name), f"derived from the name {name!r}; --id chooses another"
    version = version or (manifest.version if manifest else None)
    if not agent_id or not version:
        fail("give --name (or --id) and --version, or an agent project; e.g. gl agent publish --name "
             "\"CBAM Carbon Calculator\" --id gl-cbam-calculator-v2 --version 2.3.1 examples/agents/cbam-calculator")
    ref = naming.AgentVersionRef.parse(f"{agent_id}@{version}")
    err.print(f"agent id {escape(agent_id)} ({escape(why)}); reference {ref}", soft_wrap=True)
    base = yaml.safe_load(file.read_text()) if file else {}
    s = session(kubeconfig, context, namespace)
    new_agent = None
    existing = kube.get(s.api, kube.AGENT, s.namespace, agent_id)
    if existing is not None and name and existing["spec"]["displayName"] != name:
        err.print(f"Agent {agent_id} exists, named {escape(existing['spec']['displayName'])!r}; --name names a new "
                  "Agent only, so it stays so")
    if existing is None:
        fields = {**(base.get("agent") or {}), **(manifest.agent.to_k8s() if manifest and manifest.agent else {}),
                  **{k: v for k, v in (("domain", domain), ("type", type_), ("displayName", name),
                                       ("description", description)) if v}}
        fields.setdefault("displayName", agent_id)
        missing = [flag for flag, key in (("--domain", "domain"), ("--type", "type")) if not fields.get(key)]
        if missing:
            fail(f"agent {agent_id} does not exist yet in {s.namespace}; to create it, also give "
                 f"{' and '.join(missing)}"
                 + (f" (or an agent block in {gl_artifact.MANIFEST})" if manifest else ""))
        new_agent = resource(kinds.AGENT, agent_id, s.namespace, AgentSpec.model_validate(fields))
    if kube.get(s.api, kube.AGENT_VERSION, s.namespace, ref.object_name) is not None:
        fail(f"{ref} is already published in {s.namespace}; a published version never changes: publish a new "
             "version instead")
    fields = {**(base.get("version") or {}), "agent": agent_id, "version": version}
    if manifest:  # what the artifact itself declares is what the registry records
        fields.update(manifest.model_dump(by_alias=True, exclude_none=True, mode="json",
                                          include={"capabilities", "runtime", "release_notes"}))
    if image:
        fields["image"] = image
    if capabilities:
        fields["capabilities"] = yaml.safe_load(capabilities.read_text())
    spec = AgentVersionSpec.model_validate(fields)  # before the upload: a bad field should not cost one
    source: bytes | Path | None = packed if packed is not None else artifact
    what = f"{project} (packed)" if packed is not None else (artifact.name if artifact else "")
    if packed is not None:
        err.print(f"packed {project}: {len(packed)} bytes, {gl_artifact.digest(packed)}")
    if source is not None and not dry_run:
        if not bucket:
            fail(f"{'a project DIR' if packed is not None else '--artifact'} needs a bucket: --bucket or "
                 "$GL_S3_BUCKET")
        uploaded = _upload(source, what, bucket, s3_endpoint)
        spec.artifact = Artifact(uri=uploaded.uri, digest=uploaded.digest, size_bytes=uploaded.size)
        err.print(f"artifact {'already in' if uploaded.already_there else 'uploaded to'} {uploaded.uri}")
    elif source is not None:
        digest = (gl_artifact.digest(source).removeprefix("sha256:") if isinstance(source, bytes)
                  else artifacts.sha256_of(source))
        size = len(source) if isinstance(source, bytes) else source.stat().st_size
        # Unchecked: without a bucket the URI shows a placeholder, and a dry run sends nothing.
        spec.artifact = Artifact.model_construct(uri=f"s3://{bucket or 'BUCKET'}/sha256/{digest}",
                                                 digest=f"sha256:{digest}", size_bytes=size)
    version_obj = resource(kinds.AGENT_VERSION, ref.object_name, s.namespace, spec,
                           labels={"app.kubernetes.io/name": agent_id, "app.kubernetes.io/version": version})
    if dry_run:
        typer.echo(yaml.safe_dump_all([o for o in (new_agent, version_obj) if o], sort_keys=False))
        return
    if new_agent:
        kube.create(s.api, kube.AGENT, s.namespace, new_agent)
        err.print(f"created Agent {agent_id}")
    kube.create(s.api, kube.AGENT_VERSION, s.namespace, version_obj)
    # Watched, not polled: the answer comes the moment the operator records it.
    for current in kube.watch_object(s.api, kube.AGENT_VERSION, s.namespace, ref.object_name, wait):
        accepted = conditions.get_condition((current.get("status") or {}).get("conditions"), "Accepted")
        if accepted and accepted["status"] == ConditionStatus.true:
            typer.echo(str(ref))
            return
        if accepted and accepted["status"] == ConditionStatus.false:
            fail(f"{ref} was not accepted: {accepted['message']}")
    fail(f"{ref} was created but not accepted within {wait:.0f}s; is the registry operator running?")


@commands.command("pull")
@guarded
def agent_pull(
    reference: Annotated[str, typer.Argument(metavar="AGENT@VERSION")],
    output_file: Annotated[Optional[Path], typer.Option(
        "-o", "--output", metavar="FILE", show_default=False,
        help="where to write the artifact (default: AGENT-VERSION.zip in the current directory)")] = None,
    s3_endpoint: Annotated[Optional[str], typer.Option("--s3-endpoint", envvar="GL_S3_ENDPOINT",
                                                       help="S3-compatible endpoint URL")] = None,
    namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None, debug: Debug = False,
) -> None:
    """Download a version's artifact and verify it against the digest the registry pinned.

    Written to FILE only if the sha256 of the bytes is the version's spec.artifact.digest.
    Otherwise nothing is written (an existing FILE stays as it was) and the command fails.

    [bold]Example[/bold]: gl agent pull gl-cbam-calculator-v2@2.3.1 -n climate-team
    (writes gl-cbam-calculator-v2-2.3.1.zip).

    [bold]Example[/bold]: gl agent pull gl-cbam-calculator-v2@2.3.1 -o /tmp/cbam.zip --s3-endpoint http://127.0.0.1:9000
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from gl_api import naming
    from gl_cli import artifacts

    ref = naming.AgentVersionRef.parse(reference)
    s = session(kubeconfig, context, namespace)
    version = kube.get(s.api, kube.AGENT_VERSION, s.namespace, ref.object_name)
    if version is None:
        fail(f"{ref} is not published in namespace {s.namespace}; see `gl agent get {ref.agent}`")
    pinned = version["spec"].get("artifact") or {}
    if not pinned.get("uri") or not pinned.get("digest"):
        fail(f"{ref} has no artifact (spec.artifact.uri and digest); it ships as the image "
             f"{version['spec'].get('image') or '(none)'}")
    target = output_file or Path(f"{ref.object_name}.zip")
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=err.console, transient=False) as progress:
        task = progress.add_task(f"downloading {pinned['uri']}", total=pinned.get("sizeBytes"))
        try:
            size = artifacts.download(pinned["uri"], pinned["digest"], target, s3_endpoint,
                                      lambda n: progress.advance(task, n))
        except artifacts.ArtifactError as error:
            fail(str(error))
    err.print(f"verified {pinned['digest']} ({size} bytes)")
    typer.echo(str(target))


@commands.command("search")
@guarded
def agent_search(query: Annotated[str, typer.Argument(help="words, even misspelt, or what you need")],
                 domain: Annotated[Optional[str], typer.Option()] = None,
                 type_: Annotated[Optional[str], typer.Option("--type")] = None,
                 state: Annotated[Optional[str], typer.Option()] = None,
                 tag: Annotated[Optional[str], typer.Option()] = None,
                 limit: Annotated[int, typer.Option()] = 20, all_namespaces: AllNamespaces = True,
                 namespace: Namespace = None, output: Output = "table", kubeconfig: Kubeconfig = None,
                 context: Context = None, debug: Debug = False) -> None:
    """Search agents by words and meaning. [bold]Example[/bold]: gl agent search "carbon border tax" """
    check_output(output)
    s = session(kubeconfig, context, namespace)
    path = "agentsearches" if all_namespaces and not namespace else f"namespaces/{s.namespace}/agentsearches"
    result = query_api.query(s.api, path, {"q": query, "domain": domain, "type": type_, "state": state, "tag": tag,
                                           "limit": limit})
    rows = [{k: item.get(k) for k in ("ref", "namespace", "state", "domain", "displayName", "score", "why")}
            for item in result["items"]]
    emit(rows, [("Agent", "ref"), ("Namespace", "namespace"), ("State", "state"), ("Domain", "domain"),
                ("Score", "score"), ("Why", "why")], output, kind="AgentSearchResultList")
