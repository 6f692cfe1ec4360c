"""The built-in client authentication methods (RFC 6749 §2.3.1, RFC 7591 §2 names; RFC 7523 §2.2)."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import InvalidClient
from ..models import Client
from ..parsing import basic_credentials
from .assertions import ClientSecretJwt, PrivateKeyJwt
from .base import ClientCredentials, register_auth_method


class ClientSecretBasic:
    """``client_secret_basic``: id and secret in an ``Authorization: Basic`` header."""

    name = "client_secret_basic"
    uses_secret = True

    def credentials(self, headers: Mapping[str, str], form: Mapping[str, str]) -> ClientCredentials | None:
        """The id and secret of a Basic header; None without one."""
        pair = basic_credentials(headers.get("Authorization", ""))
        return None if pair is None else ClientCredentials(self.name, *pair)

    def verify(self, client: Client, credentials: ClientCredentials) -> bool:
        """The secret matches the client's stored hash."""
        return client.check_secret(credentials.proof or "")


class ClientSecretPost:
    """``client_secret_post``: ``client_id`` and ``client_secret`` in the form body."""

    name = "client_secret_post"
    uses_secret = True

    def credentials(self, headers: Mapping[str, str], form: Mapping[str, str]) -> ClientCredentials | None:
        """The form's ``client_id`` and ``client_secret``; None without a secret."""
        if "client_secret" not in form:
            return None
        if "client_id" not in form:
            raise InvalidClient("client_secret without client_id")
        return ClientCredentials(self.name, form["client_id"], form["client_secret"])

    def verify(self, client: Client, credentials: ClientCredentials) -> bool:
        """The secret matches the client's stored hash."""
        return client.check_secret(credentials.proof or "")


class NoAuthentication:
    """``none``: a public client names itself with ``client_id`` and proves nothing (RFC 6749 §2.1)."""

    name = "none"
    uses_secret = False

    def credentials(self, headers: Mapping[str, str], form: Mapping[str, str]) -> ClientCredentials | None:
        """The form's ``client_id``, without proof; None without one."""
        client_id = form.get("client_id")
        return None if client_id is None else ClientCredentials(self.name, client_id)

    def verify(self, client: Client, credentials: ClientCredentials) -> bool:
        """Only a public client may go without proof: a confidential one must prove who it is (§3.2.1)."""
        return client.is_public


for _method in (
    ClientSecretBasic(),
    ClientSecretPost(),
    NoAuthentication(),
    PrivateKeyJwt(),
    ClientSecretJwt(),
):
    register_auth_method(_method)
