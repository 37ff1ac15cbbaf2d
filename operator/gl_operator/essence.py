"""What kopf compares to decide that an object changed: everything it would, less the labels the
operator itself writes from status (the lifecycle state and the agent).

Those labels are outputs. Counted as changes, each one the operator wrote came back as an update:
a handler run that found nothing to do, and a PATCH of kopf's own bookkeeping annotation, on
every publish and every transition (`python -m bench publish-cost`). Drift made by hand is put
right by the resync pass instead (resync.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import kopf

from gl_api import labels

OPERATOR_LABELS = (labels.STATE, labels.AGENT)


class WithoutOperatorLabels(kopf.AnnotationsDiffBaseStorage):
    def build(self, *, body: Any, extra_fields: Iterable[Any] | None = None) -> Any:
        essence = super().build(body=body, extra_fields=extra_fields)
        own = essence.get("metadata", {}).get("labels")
        if own:
            for key in OPERATOR_LABELS:
                own.pop(key, None)
        return essence
