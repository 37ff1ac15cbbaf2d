import sys

from gl_mirror.cli import main

sys.exit(main())
