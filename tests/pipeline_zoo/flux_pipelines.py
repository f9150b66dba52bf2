"""Pipeline cases: see pipeline_zoo/__init__.py."""

CASES = []
