"""anil-edge."""
__version__ = "0.2.0"  # the one version: pyproject reads it, the JS examples' package.json and exported metadata carry it
