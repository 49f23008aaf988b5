"""The documentation site's generated reference pages and the checks that keep the docs true to the code.

`python -m tools.docs` (`make docs-gen`) rewrites the generated pages in docs/reference/; the test suite regenerates
them in memory and fails when a committed page differs, so a new option, setting or route cannot go undocumented.
"""
