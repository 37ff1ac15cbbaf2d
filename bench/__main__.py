"""`python -m bench SCENARIO [--scale ...]`: one harness for the registry's benchmarks (issue 13).

    python -m bench get          --scale tiny|small|full
    python -m bench search       --scale tiny|10k|100k
    python -m bench cli-startup  --scale tiny|full
    python -m bench throughput   --scale tiny|full
    python -m bench publish      --scale tiny|full
    python -m bench list-watch   --scale tiny|10k|100k
    python -m bench publish-cost --scale tiny|full
    python -m bench memory       --scale tiny|10k|100k

Each prints a table and writes JSON (p50/p95/p99, throughput) with a baseline measured in the
same run beside every figure; docs/benchmarks.md says what each measures. The older scripts in
this folder (admission_overhead.py, webhook_scale.py, ...) still run on their own.
"""

from __future__ import annotations

import importlib
import sys

SCENARIOS = {"get": "bench.scenarios.get", "search": "bench.scenarios.search",
             "cli-startup": "bench.scenarios.cli_startup", "throughput": "bench.scenarios.throughput",
             "publish": "bench.scenarios.publish", "list-watch": "bench.scenarios.list_watch",
             "publish-cost": "bench.scenarios.publish_cost", "memory": "bench.scenarios.memory"}


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SCENARIOS:
        print(__doc__.strip(), file=sys.stderr)
        if argv and argv[0] not in ("-h", "--help"):
            raise SystemExit(f"\nunknown scenario {argv[0]!r}; one of: {', '.join(SCENARIOS)}")
        raise SystemExit(0 if argv else 2)
    importlib.import_module(SCENARIOS[argv[0]]).main(argv[1:])


main(sys.argv[1:])
