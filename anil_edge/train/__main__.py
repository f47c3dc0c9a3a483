"""``python -m anil_edge.train`` moved to ``python -m anil_edge train`` (the training stage
imports nothing from the command line; see the README)."""

import sys

print("python -m anil_edge.train is now: python -m anil_edge train ... (or: anil-edge train ...); "
      "under torchrun: torchrun ... -m anil_edge train ...", file=sys.stderr)
sys.exit(2)
