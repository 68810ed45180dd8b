"""``python -m edc.cli``: the same as the ``edc`` command."""

import sys

from edc.cli import main

sys.exit(main())
