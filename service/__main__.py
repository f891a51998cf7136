"""`python -m service` is the `secretary` command."""

import sys

from .cli import main

sys.exit(main())
