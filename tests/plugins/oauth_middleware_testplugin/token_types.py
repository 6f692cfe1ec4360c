"""A custom guard token scheme: ``Authorization: Test <access token>``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oauth_middleware.errors import BearerError
from oauth_middleware.models import AccessToken
from oauth_middleware.parsing import bearer_token
from oauth_middleware.responses import token_challenge
from oauth_middleware.settings import Settings
from oauth_middleware.token_types import Presented
from oauth_middleware.tokens import TokenFormat

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment


class TestToken:
    """Our access tokens under another scheme, from the header only; registered through the Python API."""

    __test__ = False  # not a pytest test class
    scheme = "Test"

    def __init__(self, settings: Settings, tokens: TokenFormat) -> None:
        self.tokens = tokens

    def extract(self, environ: WSGIEnvironment, credentials: str | None) -> Presented | None:
        """Only the header carries it."""
        return None if credentials is None else Presented(self, bearer_token(credentials), "header")

    def verify(self, presented: Presented, environ: WSGIEnvironment) -> AccessToken:
        """The token format decides, as for a bearer token."""
        return self.tokens.verify(presented.credential)

    def challenge(self, error: BearerError, realm: str) -> str:
        """``Test realm=...`` with the RFC 6750 error parameters."""
        return token_challenge(self.scheme, error, realm)

    @classmethod
    def metadata(cls, settings: Settings) -> dict[str, Any]:
        """A member of its own, so that the tests see it in the metadata."""
        return {"test_token_schemes_supported": [cls.scheme]}


class EntryPointTestToken(TestToken):
    """The same token type under the scheme ``TestEP``, registered through the entry point."""

    scheme = "TestEP"
