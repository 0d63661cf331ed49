"""``python -m ocrmill``: the same as the ``ocrmill`` command."""

import sys

from ocrmill.cli import main

sys.exit(main())
