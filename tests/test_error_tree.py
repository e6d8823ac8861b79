"""The tree in blogdata.errors' docstring is every BlogdataError subclass, under its parent."""

import re

import blogdata.errors as errors
from blogdata.errors import BlogdataError


def _drawn() -> dict[str, str | None]:
    """Map each class name in the docstring's tree to the class it is drawn under."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        match = re.match(r"^(\s*(?:[│ ]   )*(?:[├└]── )?)(\w+Error)\b", line)
        if not match:
            continue
        depth = len(match[1])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[match[2]] = stack[-1][1] if stack else None
        stack.append((depth, match[2]))
    return parents


def _subclasses(cls: type) -> list[type]:
    found: list[type] = []
    sub: type
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_the_docstring_tree_is_every_error_class_under_its_parent() -> None:
    drawn = _drawn()
    real = {
        cls.__name__: next(b.__name__ for b in cls.__bases__ if issubclass(b, BlogdataError))
        for cls in _subclasses(BlogdataError)
        if cls.__module__ == "blogdata.errors"
    }
    assert drawn.pop("BlogdataError") is None
    assert drawn == real


def test_every_blogdata_error_lives_in_the_leaf_module() -> None:
    import blogdata  # noqa: F401  (loads every module, so every subclass is defined)
    import blogdata.notebook.exercises  # noqa: F401

    assert {c.__module__ for c in _subclasses(BlogdataError)} == {"blogdata.errors"}
