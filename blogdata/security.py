"""Password hashing: the guide's ``get_password_hash`` and ``verify_password``, on pwdlib + argon2.

Fixes over the guide: a malformed or foreign stored hash verifies as ``False`` instead of raising,
and ``DUMMY_HASH`` lets ``authenticate`` spend the same hashing work on an unknown email as on a
known one, so response time does not reveal which emails are registered.

Hashing costs about 0.1 s of CPU (argon2id, 64 MiB); async callers should run it in a thread
(``await asyncio.to_thread(get_password_hash, password)``), as ``blogdata.crud`` does.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

from pydantic import SecretStr

if TYPE_CHECKING:
    from pwdlib import PasswordHash

__all__ = [
    "DUMMY_HASH",
    "get_password_hash",
    "needs_rehash",
    "redact_password_hashes",
    "verify_password",
]


@cache
def _hasher() -> PasswordHash:
    # pwdlib and argon2 load on the first hash, not with the engine that imports this module.
    from pwdlib import PasswordHash

    return PasswordHash.recommended()


def _errors() -> tuple[type[Exception], ...]:
    """Return the exceptions a malformed or foreign hash raises."""
    from pwdlib.exceptions import PwdlibError  # loaded with the hasher, see _hasher

    return (PwdlibError, TypeError, ValueError)


#: An argon2id hash of a random throwaway password, with the same parameters as new hashes, so
#: verifying against it costs exactly as much as verifying a real user's password.
DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$GXRGvb8RThF/tiFwFvi4+A$"
    "HiOQD62P/yYoA5cff+vpRmvxv/WW0f8g0+qcNy3vgok"
)


def _plain(password: str | SecretStr) -> str:
    return password.get_secret_value() if isinstance(password, SecretStr) else password


def get_password_hash(password: str | SecretStr) -> str:
    """Hash ``password`` with argon2id and a fresh random salt."""
    return _hasher().hash(_plain(password))


def verify_password(plain_password: str | SecretStr, hashed_password: str | None) -> bool:
    """Return whether ``plain_password`` matches ``hashed_password``; never raise.

    A missing, malformed or unknown-algorithm hash gives ``False``, as does a wrong password.
    """
    if not isinstance(hashed_password, str) or not hashed_password:
        return False
    hasher = _hasher()
    try:
        return hasher.verify(_plain(plain_password), hashed_password)
    except _errors():
        return False


def needs_rehash(hashed_password: str) -> bool:
    """Return whether ``hashed_password`` was made with weaker settings than new hashes use."""
    hasher = _hasher()
    try:
        return hasher.current_hasher.check_needs_rehash(hashed_password)
    except _errors():
        return True


#: A password hash in modular crypt form, as pwdlib writes them: ``$argon2id$...``, ``$2b$...``.
_HASH_RE = re.compile(
    r"\$(?:argon2(?:id|i|d)|2[abxy]?|bcrypt[\w-]*|pbkdf2[\w-]*|scrypt|[156])\$[^'\"\s]*"
)
_REDACTED = "<password hash hidden>"


def redact_password_hashes(text: str) -> str:
    """Return ``text`` with every password hash (``$argon2id$...``, ``$2b$...``) replaced."""
    return _HASH_RE.sub(_REDACTED, text)
