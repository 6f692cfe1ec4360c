"""The server's secret key (the ``session_secret`` setting) and the keys derived from it.

One secret in the ini, one derived key per purpose, so that a value signed
for one purpose (a session cookie) is never accepted for another (a CSRF
token) and no purpose ever sees the secret itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

log = logging.getLogger("oauth_middleware")


def master_key(session_secret: str) -> bytes:
    """The key behind sessions, CSRF tokens and kept unique tokens.

    :param session_secret: the setting; empty means a random key for this
        process only (sessions and forms then break across processes and
        restarts, so multi-process deployments must set it).
    """
    if session_secret:
        return hashlib.sha256(session_secret.encode("utf-8")).digest()
    # A WARNING, not INFO: with several worker processes this silently breaks
    # a third to two thirds of logins, each refused by a worker that did not
    # make the form.
    log.warning(
        "session_secret is not set: using a random key, valid in this process only; with several "
        "worker processes (gunicorn -w 2) logins and consent then fail with 'the login form expired' "
        "when a form is posted to another worker: set session_secret, the same in every process"
    )
    return secrets.token_bytes(32)


def derive_key(master: bytes, purpose: str) -> bytes:
    """A 256-bit key for one ``purpose`` (HMAC-SHA256 of the purpose under ``master``)."""
    return hmac.new(master, f"oauth_middleware/{purpose}".encode(), hashlib.sha256).digest()
