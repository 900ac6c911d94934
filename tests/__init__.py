"""speedlab's test suite (a package, so that ``tests.helpers`` imports without any path setup)."""
