"""A client authentication method from outside the package: an id header and a token header.

The entry point ``test_header`` (group ``oauth_middleware.client_auth``)
names :data:`test_header`; the tests register another instance, reading
other headers, through the Python API.
"""

from __future__ import annotations

from collections.abc import Mapping

from oauth_middleware.client_auth import ClientCredentials
from oauth_middleware.models import Client


class HeaderToken:
    """The client id in one header, its secret in another.

    :param name: the method's ``token_endpoint_auth_method`` name.
    :param id_header: the header naming the client.
    :param token_header: the header with its secret.
    """

    uses_secret = True

    def __init__(self, name: str, id_header: str, token_header: str) -> None:
        self.name = name
        self.id_header = id_header
        self.token_header = token_header

    def credentials(self, headers: Mapping[str, str], form: Mapping[str, str]) -> ClientCredentials | None:
        """Both headers, or None when the request has neither."""
        client_id, token = headers.get(self.id_header), headers.get(self.token_header)
        if client_id is None and token is None:
            return None
        return ClientCredentials(self.name, client_id or "", token or "")

    def verify(self, client: Client, credentials: ClientCredentials) -> bool:
        """The token is the client's secret."""
        return client.check_secret(credentials.proof or "")


#: The instance the entry point registers.
test_header = HeaderToken("test_header", "X-Test-Client", "X-Test-Token")
