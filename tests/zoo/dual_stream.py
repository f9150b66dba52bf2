"""Zoo cases: see zoo/__init__.py."""

CASES = []
