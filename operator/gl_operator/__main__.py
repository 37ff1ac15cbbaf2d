import sys

from gl_operator.cli import main

sys.exit(main())
