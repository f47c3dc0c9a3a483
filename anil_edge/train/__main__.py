"""``python -m anil_edge.train ...`` = ``anil-edge train ...`` (also under torchrun)."""

import sys

from ..cli.main import main

sys.exit(main(["train", *sys.argv[1:]]))
