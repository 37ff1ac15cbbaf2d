import sys

from gl_webhooks.cli import main

sys.exit(main())
