"""Write (or, with --check, verify) policies/meta/revision.rego: ``python -m gl_policy.revision``."""

from __future__ import annotations

import argparse
import sys

from gl_policy import POLICY_DIR, REVISION_FILE, revision_module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gl_policy.revision", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is out of date")
    args = parser.parse_args(argv)
    path, wanted = POLICY_DIR / REVISION_FILE, revision_module()
    if args.check:
        if not path.exists() or path.read_text() != wanted:
            print(f"{path} is out of date; run `python -m gl_policy.revision`", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(exist_ok=True)
    path.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
