"""A light start: ``import blogdata`` loads what a first analysis cell needs, the rest on use."""

from __future__ import annotations

import json
import subprocess
import sys

# What `import blogdata` must not load: migrations, email validation, password hashing, the
# settings machinery, seeding, charts, the notebook and JIT stacks, the web and CLI front ends.
HEAVY = (
    "alembic",
    "email_validator",
    "pwdlib",
    "argon2",
    "pydantic_settings",
    "faker",
    "matplotlib",
    "IPython",
    "numba",
    "fastapi",
    "typer",
)


def _run(code: str) -> object:
    """Run ``code`` in a fresh interpreter and return the JSON it prints."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_blogdata_loads_no_heavy_library() -> None:
    code = (
        f"import json, sys, blogdata\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    assert _run(code) == []


def test_a_first_load_cell_loads_no_heavy_library() -> None:
    # What an analyst's first cell imports: a session, the loader and a model.
    code = (
        "import json, sys\n"
        "from blogdata import Post, create_engine, describe, load_frame, session_scope\n"
        "heavy = [m for m in ('alembic', 'email_validator', 'pwdlib', 'argon2', 'faker',\n"
        "    'matplotlib', 'IPython', 'numba', 'fastapi', 'typer') if m in sys.modules]\n"
        "print(json.dumps(heavy))"
    )
    assert _run(code) == []


def test_every_public_name_resolves_in_a_fresh_interpreter() -> None:
    code = (
        "import json, types, blogdata\n"
        "missing = []\n"
        "for name in blogdata.__all__:\n"
        "    try:\n"
        "        exec(f'from blogdata import {name}', {})\n"
        "    except ImportError:\n"
        "        missing.append(name)\n"
        "unlisted = sorted(set(blogdata.__all__) - set(dir(blogdata)))\n"
        "print(json.dumps([missing, unlisted]))"
    )
    assert _run(code) == [[], []]


def test_describe_stays_the_function_when_its_module_is_imported() -> None:
    # `blogdata.describe` is both a submodule and a public function: importing the submodule
    # (as the %sql magic does) must not replace the function on the package.
    code = (
        "import json, sys, blogdata.describe, blogdata.notebook, blogdata.crud\n"
        "from blogdata import describe, crud\n"
        "module = sys.modules['blogdata.describe']\n"
        "print(json.dumps([describe is module.describe, callable(describe),\n"
        "                  crud.__name__, blogdata.migrate.__name__]))"
    )
    assert _run(code) == [True, True, "blogdata.crud", "blogdata.db.migrate"]


def test_an_unknown_name_is_an_attribute_error() -> None:
    code = (
        "import json, blogdata\n"
        "try:\n"
        "    blogdata.no_such_name\n"
        "except AttributeError as e:\n"
        "    print(json.dumps(str(e)))"
    )
    assert _run(code) == "module 'blogdata' has no attribute 'no_such_name'"
