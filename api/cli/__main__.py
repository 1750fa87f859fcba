"""``python -m api.cli``: the same as the ``pathcredit`` command."""

import sys

from . import main

sys.exit(main())
