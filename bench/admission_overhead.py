"""What the registry's admission webhooks cost a write, measured against the same writes without them.

Starts a local control plane with the operator serving its webhooks (embedded regopy engine),
then creates AgentVersions (each goes through the mutating `stamp` and the validating `publish`
webhook) with the webhooks registered, and the same number with them unregistered, interleaved
in rounds so both see the same machine load. Prints latency percentiles of both and their ratio.

    .venv/bin/python bench/admission_overhead.py [--writes 200] [--rounds 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kubernetes import client, config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from e2e import governed as setup  # noqa: E402
from e2e import registry as reg  # noqa: E402
from e2e.governed import TEAM, version_object  # noqa: E402
from gl_api import GROUP, VERSION  # noqa: E402
from gl_devenv import registry_services  # noqa: E402


def _writes(api: client.ApiClient, count: int, prefix: str) -> list[float]:
    custom = client.CustomObjectsApi(api)
    timings = []
    for n in range(count):
        obj = version_object(f"{prefix}.{n}")
        obj["metadata"] = {"name": f"{reg.AGENT}-{prefix}.{n}", "namespace": TEAM}
        start = time.perf_counter()
        custom.create_namespaced_custom_object(GROUP, VERSION, TEAM, "agentversions", obj)
        timings.append(time.perf_counter() - start)
    return timings


def _summary(label: str, timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    figures = {"p50": statistics.median(ordered) * 1000, "p95": ordered[int(len(ordered) * 0.95) - 1] * 1000,
               "mean": statistics.fmean(ordered) * 1000}
    print(f"{label:28} n={len(ordered):5}  p50={figures['p50']:7.2f} ms  p95={figures['p95']:7.2f} ms  "
          f"mean={figures['mean']:7.2f} ms")
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=200, help="writes per round and mode (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds (default: %(default)s)")
    args = parser.parse_args()
    with setup.running(Path(tempfile.mkdtemp(prefix="gl-bench-")), "regopy") as env:
        api = config.new_client_from_config(config_file=str(env.cluster.kubeconfig))
        port = env.webhook_port
        baseline: list[float] = []
        governed: list[float] = []
        for round_number in range(args.rounds):
            registry_services.uninstall_webhooks(env.cluster)
            time.sleep(1)  # the API server drops the configurations asynchronously
            baseline += _writes(api, args.writes, f"10{round_number}.0")
            registry_services.install_webhooks(env.cluster, env.cluster.pki_dir, port)
            time.sleep(1)
            governed += _writes(api, args.writes, f"20{round_number}.0")
        print(f"AgentVersion creates, {args.rounds} alternating rounds of {args.writes}:")
        base = _summary("without webhooks (baseline)", baseline)
        with_hooks = _summary("with webhooks (regopy)", governed)
        print(f"{'ratio with/without':28} p50 x{with_hooks['p50'] / base['p50']:.2f}  "
              f"p95 x{with_hooks['p95'] / base['p95']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
