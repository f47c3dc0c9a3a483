"""The ``anil-edge`` command: thin wrappers over the package's functions."""
