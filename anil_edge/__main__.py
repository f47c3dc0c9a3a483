"""``python -m anil_edge COMMAND ...`` = ``anil-edge COMMAND ...`` (also under torchrun:
``torchrun --nproc_per_node=N -m anil_edge train ...``)."""

import sys

from .cli.main import main

sys.exit(main())
