"""Build the control-plane binaries from their Go modules into a shared cache.

There are no container images on our machines, so kind cannot run; instead etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok and opa are
compiled from the Go module proxy at the versions pinned in ``versions.py``. Each tool
lands in ``<cache>/bin/<tool>-<version>/`` with a ``.complete`` stamp written last, so
an interrupted build is redone and a finished one is reused by every checkout (CI's
fresh clone included).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from gl_devenv import versions

KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
# The real node's Kubernetes side; built only when a command needs real pods.
NODE_COMMANDS = ("kubelet", "kube-proxy")
STAMP = ".complete"


def cache_dir() -> Path:
    """Where built binaries live, outside any checkout so all clones share them."""
    explicit = os.environ.get("GREENLANG_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "greenlang-registry"


def tool_dir(tool: str) -> Path:
    version = {
        "kubernetes": versions.KUBERNETES,
        "node": versions.KUBERNETES,
        # Only Kubernetes discovery compiled in (see build_prometheus): a different binary, its own key.
        "prometheus": f"{versions.PROMETHEUS}-k8s-sd",
        "etcd": versions.ETCD,
        "kwok": versions.KWOK,
        "opa": versions.OPA,
        "helm": versions.HELM,
        "argocd": versions.ARGOCD,
        "krew": versions.KREW,
    }[tool]
    return cache_dir() / "bin" / f"{tool}-{version}"


def is_built(tool: str) -> bool:
    return (tool_dir(tool) / STAMP).exists()


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Static binaries like Kubernetes' own release builds; the local toolchain only.
    env.update(CGO_ENABLED="0", GOTOOLCHAIN=env.get("GOTOOLCHAIN", "local"), GOFLAGS="-buildvcs=false")
    return env


def _run(cmd: list[str], cwd: Path) -> str:
    print("+", " ".join(cmd), flush=True)
    result = subprocess.run(cmd, cwd=cwd, env=go_env(), check=True, stdout=subprocess.PIPE, text=True)
    return result.stdout


def _consumer_module(name: str, requirement: str, imports: list[str]) -> Path:
    """A throwaway module that depends on ``requirement`` so its commands can be built.

    Some upstream modules (Kubernetes, etcd) cannot be ``go install``-ed directly because
    their go.mod relies on ``replace`` directives, which only apply in the main module.
    """
    src = cache_dir() / "src" / name
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    _run(["go", "mod", "init", f"greenlang.local/build/{name.split('-')[0]}"], src)
    _run(["go", "mod", "edit", f"-require={requirement}"], src)
    body = "\n".join(f'\t_ "{path}"' for path in imports)
    (src / "tools.go").write_text(f"//go:build tools\n\npackage tools\n\nimport (\n{body}\n)\n")
    return src


def _finish(tool: str, staging: Path) -> None:
    target = tool_dir(tool)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    (target / STAMP).write_text("ok\n")
    print(f"built {tool} into {target}", flush=True)


def _staging(tool: str) -> Path:
    staging = tool_dir(tool).with_name(tool_dir(tool).name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def _build_kubernetes_commands(tool: str, commands: tuple[str, ...]) -> None:
    version = versions.KUBERNETES
    src = _consumer_module(
        f"{tool}-{version}",
        f"k8s.io/kubernetes@{version}",
        [f"k8s.io/kubernetes/cmd/{cmd}" for cmd in commands],
    )
    # k8s.io/kubernetes requires its staging modules at v0.0.0 with `replace => ./staging/...`;
    # point each of them at its published tag instead. The list comes from upstream's go.mod.
    info = json.loads(_run(["go", "mod", "download", "-json", f"k8s.io/kubernetes@{version}"], src))
    upstream_gomod = Path(info["GoMod"]).read_text()
    staged = re.findall(r"^\s*(k8s\.io/[\w.\-/]+)\s+=>\s+\./staging/", upstream_gomod, re.MULTILINE)
    if not staged:
        raise RuntimeError(f"no staging replacements found in {info['GoMod']}")
    for module in staged:
        _run(["go", "mod", "edit", f"-replace={module}={module}@{versions.KUBERNETES_STAGING}"], src)
    _run(["go", "mod", "tidy"], src)

    minor = version.removeprefix("v1.").split(".")[0]
    stamp_flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        stamp_flags += [f"-X {pkg}.gitVersion={version}", f"-X {pkg}.gitMajor=1", f"-X {pkg}.gitMinor={minor}",
                        f"-X {pkg}.gitTreeState=clean"]
    staging = _staging(tool)
    _run(
        ["go", "build", "-trimpath", "-tags=selinux,notest,grpcnotrace", "-ldflags", " ".join(["-s", "-w", *stamp_flags]),
         "-o", str(staging) + "/", *[f"k8s.io/kubernetes/cmd/{cmd}" for cmd in commands]],
        src,
    )
    _finish(tool, staging)


def build_kubernetes() -> None:
    _build_kubernetes_commands("kubernetes", KUBERNETES_COMMANDS)


def build_node() -> None:
    """kubelet and kube-proxy: same module and build cache as the control plane, so most packages are reused."""
    _build_kubernetes_commands("node", NODE_COMMANDS)


def build_etcd() -> None:
    src = _consumer_module(f"etcd-{versions.ETCD}", f"go.etcd.io/etcd/server/v3@{versions.ETCD}",
                           ["go.etcd.io/etcd/server/v3"])
    _run(["go", "mod", "tidy"], src)
    staging = _staging("etcd")
    _run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(staging / "etcd"), "go.etcd.io/etcd/server/v3"], src)
    _finish("etcd", staging)


def _go_install(tool: str, package: str, version: str, binary: str, ldflags: str = "") -> Path:
    staging = _staging(tool)
    env_bin = staging
    print(f"+ go install {package}@{version}", flush=True)
    subprocess.run(["go", "install", "-trimpath", "-ldflags", f"-s -w {ldflags}".strip(), f"{package}@{version}"],
                   env={**go_env(), "GOBIN": str(env_bin)}, check=True, cwd=staging)
    if not (staging / binary).exists():
        raise RuntimeError(f"go install {package}@{version} produced no {binary}")
    return staging


def build_kwok() -> None:
    staging = _go_install("kwok", "sigs.k8s.io/kwok/cmd/kwok", versions.KWOK, "kwok")
    # kwok >= 0.8 ships no built-in stages: take the "fast" stage set the module defines
    # (node initialisation, node leases, pods that become Ready at once).
    moddir = Path(subprocess.run(["go", "env", "GOMODCACHE"], check=True, stdout=subprocess.PIPE, text=True,
                                 env=go_env()).stdout.strip()) / f"sigs.k8s.io/kwok@{versions.KWOK}"
    stage_root = moddir / "kustomize" / "stage" / "fast"
    resources = re.findall(r"^-\s+(\S+)\s*$", (stage_root / "kustomization.yaml").read_text(), re.MULTILINE)
    fast = [p for r in resources for p in sorted((stage_root / r).glob("*.yaml")) if p.name != "kustomization.yaml"]
    if not fast:
        raise RuntimeError(f"no kwok stage files under {stage_root}")
    (staging / "stages.yaml").write_text("\n---\n".join(p.read_text() for p in fast))
    _finish("kwok", staging)


def build_opa() -> None:
    _finish("opa", _go_install("opa", "github.com/open-policy-agent/opa", versions.OPA, "opa"))


def build_prometheus() -> None:
    """Prometheus with Kubernetes service discovery only (the web UI's assets are not in the module; the API is).

    ``remove_all_sd`` drops the cloud discoverers (their SDKs are most of a cold build) and
    ``enable_kubernetes_sd`` keeps the one the local cluster needs, whose client-go packages the
    Kubernetes build has already compiled.
    """
    # The module's v0.MMNN.P is release M.NN.P (v0.316.0 = 3.16.0).
    combined, patch = versions.PROMETHEUS.removeprefix("v0.").split(".")
    release = f"{int(combined) // 100}.{int(combined) % 100}.{patch}"
    staging = _staging("prometheus")
    print(f"+ go install github.com/prometheus/prometheus/cmd/prometheus@{versions.PROMETHEUS}", flush=True)
    subprocess.run(["go", "install", "-trimpath", "-tags=netgo,remove_all_sd,enable_kubernetes_sd",
                    "-ldflags", f"-s -w -X github.com/prometheus/common/version.Version={release}",
                    f"github.com/prometheus/prometheus/cmd/prometheus@{versions.PROMETHEUS}"],
                   env={**go_env(), "GOBIN": str(staging)}, check=True, cwd=staging)
    _finish("prometheus", staging)


def build_krew() -> None:
    _finish("krew", _go_install("krew", "sigs.k8s.io/krew/cmd/krew", versions.KREW, "krew",
                                f"-X sigs.k8s.io/krew/internal/version.gitTag={versions.KREW}"))


def build_helm() -> None:
    """Helm, stamped as its own Makefile does: without the version `helm version` says v3.22, and
    without the Kubernetes version `helm template` assumes 1.20 for `.Capabilities.KubeVersion`."""
    minor = versions.KUBERNETES.split(".")[1]
    ldflags = (f"-X helm.sh/helm/v3/internal/version.version={versions.HELM} "
               f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 "
               f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={minor}")
    _finish("helm", _go_install("helm", "helm.sh/helm/v3/cmd/helm", versions.HELM, "helm", ldflags))


# The two Argo CD commands a local GitOps loop needs; the API server, CLI, Dex and notifications stay out.
ARGOCD_COMMANDS = ("github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands",
                   "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands")
_ARGOCD_MAIN = """package main

// Dispatches on argv[0] like upstream's cmd/main.go, for the two commands built here only.

import (
\t"fmt"
\t"os"
\t"path/filepath"

\t"github.com/spf13/cobra"
\t"k8s.io/klog/v2"

\tappcontroller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
\treposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
\t"github.com/argoproj/argo-cd/v3/util/log"
)

func init() {
\tklog.SetLogger(log.NewLogrusLogger(log.NewWithCurrentConfig()))
}

func main() {
\tvar command *cobra.Command
\tswitch name := filepath.Base(os.Args[0]); name {
\tcase "argocd-application-controller":
\t\tcommand = appcontroller.NewCommand()
\tcase "argocd-repo-server":
\t\tcommand = reposerver.NewCommand()
\tdefault:
\t\tfmt.Fprintf(os.Stderr, "%s: run as argocd-application-controller or argocd-repo-server (a symlink)\\n", name)
\t\tos.Exit(2)
\t}
\tif err := command.Execute(); err != nil {
\t\tos.Exit(1)
\t}
}
"""


def build_argocd() -> None:
    """Argo CD's application controller and repo server as one binary, run through a symlink named as either.

    A main of our own importing only those two commands, not upstream's all-in-one ``cmd``: the API
    server, CLI, Dex and notifications add 300+ packages (and their modules) that nothing here runs.
    """
    version = versions.ARGOCD
    src = _consumer_module(f"argocd-{version}", f"github.com/argoproj/argo-cd/v3@{version}",
                           list(ARGOCD_COMMANDS))
    # Argo CD pins k8s.io/* and a few others with `replace`, which only the main module's go.mod honours.
    info = json.loads(_run(["go", "mod", "download", "-json", f"github.com/argoproj/argo-cd/v3@{version}"], src))
    pins = re.findall(r"^\s*([\w.\-/]+)\s+=>\s+([\w.\-/]+)\s+(v\S+)\s*$", Path(info["GoMod"]).read_text(),
                      re.MULTILINE)
    if not pins:
        raise RuntimeError(f"no replacements found in {info['GoMod']}")
    for module, target, pinned in pins:
        _run(["go", "mod", "edit", f"-replace={module}={target}@{pinned}"], src)
    (src / "argocd").mkdir()
    (src / "argocd" / "main.go").write_text(_ARGOCD_MAIN)
    _run(["go", "mod", "tidy"], src)
    staging = _staging("argocd")
    _run(["go", "build", "-trimpath", "-ldflags",
          f"-s -w -X github.com/argoproj/argo-cd/v3/common.version={version.removeprefix('v')}",
          "-o", str(staging / "argocd"), "./argocd"], src)
    # Its CRDs and default configuration objects, which a local Argo CD installs (gl_devenv.argocd).
    # (Copied as text: the module cache's files and directories are read-only.)
    for manifests in ("crds", "base/config"):
        target = staging / "manifests" / manifests
        target.mkdir(parents=True)
        for source in (Path(info["Dir"]) / "manifests" / manifests).glob("*.yaml"):
            if source.name != "kustomization.yaml":
                (target / source.name).write_text(source.read_text())
    _finish("argocd", staging)


# Gateway API's standard-channel CRDs (HTTPRoute weights for Canary traffic), for the tests that install them.
GATEWAY_API = "v1.4.0"


def gateway_api_crds(version: str = GATEWAY_API) -> list[Path]:
    """The standard-channel CRD manifests of ``sigs.k8s.io/gateway-api@version``, from the Go module
    cache (downloaded through the module proxy first if needed; nothing is built)."""
    if shutil.which("go") is None:
        raise RuntimeError("the Go toolchain is needed to fetch the Gateway API CRDs: install Go (https://go.dev/doc/install)")
    result = subprocess.run(["go", "mod", "download", "-json", f"sigs.k8s.io/gateway-api@{version}"],
                            env=go_env(), check=True, stdout=subprocess.PIPE, text=True,
                            cwd=tempfile.gettempdir())  # outside any module
    directory = Path(json.loads(result.stdout)["Dir"]) / "config" / "crd" / "standard"
    found = sorted(directory.glob("gateway.networking.k8s.io_*.yaml"))
    if not found:
        raise RuntimeError(f"no Gateway API CRDs under {directory}")
    return found


BUILDERS = {
    "etcd": build_etcd,
    "kwok": build_kwok,
    "kubernetes": build_kubernetes,
    "opa": build_opa,
    "helm": build_helm,
    "krew": build_krew,
    "argocd": build_argocd,
    "node": build_node,
    "prometheus": build_prometheus,
}
CONTROL_PLANE = ("etcd", "kwok", "kubernetes")
# What `gl-dev build` and the test suite need: the control plane, the policy engine, the real
# node's kubelet (it shares the Kubernetes build cache) and Prometheus for the agents' SLOs.
DEFAULT_TOOLS = (*CONTROL_PLANE, "opa", "node", "prometheus")


def ensure(tools: tuple[str, ...] | list[str] = CONTROL_PLANE, force: bool = False) -> None:
    """Build every tool that is not in the cache yet (all of them with ``force``)."""
    if shutil.which("go") is None:
        raise RuntimeError("the Go toolchain is needed to build the control plane: install Go (https://go.dev/doc/install)")
    for tool in tools:
        if force or not is_built(tool):
            BUILDERS[tool]()


def binary(tool: str, name: str | None = None) -> Path:
    path = tool_dir(tool) / (name or tool)
    if not is_built(tool):
        raise FileNotFoundError(f"{tool} is not built yet; run `gl-dev build` (or `python -m gl_devenv build`)")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the local control-plane tools into the shared cache.")
    parser.add_argument("tools", nargs="*", metavar="TOOL",
                        help=f"tools to build, of {', '.join(BUILDERS)} (default: {' '.join(DEFAULT_TOOLS)})")
    parser.add_argument("--force", action="store_true", help="rebuild even when the cache has them")
    args = parser.parse_args(argv)
    unknown = set(args.tools) - set(BUILDERS)
    if unknown:
        parser.error(f"unknown tool {', '.join(sorted(unknown))}; choose from {', '.join(BUILDERS)}")
    ensure(args.tools or DEFAULT_TOOLS, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
