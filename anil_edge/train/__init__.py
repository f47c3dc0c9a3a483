"""Meta-training (PyTorch + learn2learn): backbones and ANIL's outer loop.

Needs the ``train`` extra: ``pip install 'anil-edge[train]'`` (see scripts/bootstrap.sh).
"""
