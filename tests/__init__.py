"""blogdata's tests: a package, so helpers are imported as ``tests.helpers`` by pytest and mypy."""
