"""Named crash points for restart tests, like etcd's gofail: off unless $GL_FAILPOINTS names them.

``GL_FAILPOINTS=after-transition`` makes the operator exit abruptly right after it changed an
AgentVersion's state and before it recorded the Promotion's success, so tests can show that a
restart finishes the job without a second transition.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)
EXIT_CODE = 75


def hit(name: str) -> None:
    if name in (os.environ.get("GL_FAILPOINTS") or "").split(","):
        log.error("failpoint %s reached: exiting abruptly", name)
        logging.shutdown()
        os._exit(EXIT_CODE)
