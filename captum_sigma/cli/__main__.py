"""``python -m captum_sigma.cli`` (e.g. under ``torchrun ... -m captum_sigma.cli``)."""

import sys

from captum_sigma.cli import main

sys.exit(main())
