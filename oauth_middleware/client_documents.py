"""Clients identified by the URL of their metadata document (draft-ietf-oauth-client-id-metadata-document).

With ``client_id_metadata_documents`` on, a ``client_id`` that is an https
URL and names no registered client is fetched (:mod:`oauth_middleware.fetch`:
no special-use address, no redirect, one deadline, at most
:data:`MAX_DOCUMENT_SIZE` bytes, JSON only) and checked:

* its ``client_id`` is the URL, compared as strings: a document served
  at one URL cannot speak for another client;
* no shared secret: no ``client_secret``, and a ``token_endpoint_auth_method``
  of ``none`` (the default here) or ``private_key_jwt`` with its keys;
* ``redirect_uris`` present, each as a dynamic registration's (RFC 8252);
* grant types among ``authorization_code`` and ``refresh_token``; scopes
  outside those such clients may have are dropped, not refused: one document
  serves many servers.

The client it describes is then treated like a registered public client
(PKCE required, consent asked every time) or, with keys, a ``private_key_jwt``
one. Documents are cached for what their ``Cache-Control`` allows, kept
between 60 seconds and ``client_document_max_age``; one that could not be
used is asked again after :data:`FAILURE_TTL` seconds, so a flood of requests
naming a broken URL does not become a flood of fetches.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from urllib.parse import urlsplit

from .client_auth.authenticator import ClientSource
from .client_metadata import registered_client
from .clock import SYSTEM_CLOCK, Clock
from .errors import OAuthError, UnusableClientDocument, describable
from .fetch import Fetcher, FetchError
from .models import Client

__all__ = ["ClientDirectory", "ClientDocuments", "is_document_url"]

log = logging.getLogger("oauth_middleware.clients")

#: Largest document read, in bytes (the draft recommends 5 kB; keys inline need room).
MAX_DOCUMENT_SIZE = 16 * 1024
#: Fewest seconds a usable document is kept, whatever its ``Cache-Control`` says.
MIN_TTL = 60
#: Seconds a document that could not be used is answered from the cache with its refusal.
FAILURE_TTL = 10
#: Most documents (and refusals) kept in memory; the least recently used go first.
MAX_CACHED = 1000
#: The grant types a metadata-document client may use: the code flow and its refresh tokens.
DOCUMENT_GRANTS = ("authorization_code", "refresh_token")


def is_document_url(client_id: str) -> bool:
    """Whether ``client_id`` has the form of a client identifier URL (the draft's "Client Identifier URL").

    https (or http, which the fetcher allows only to an allowed loopback
    address), a host, a path, no user info, fragment or dot segments.
    """
    if not client_id.startswith(("https://", "http://")) or not re.fullmatch(r"[\x21-\x7e]+", client_id):
        return False
    parts = urlsplit(client_id)
    segments = parts.path.split("/")
    return (
        bool(parts.hostname)
        and parts.username is None
        and parts.password is None
        and "#" not in client_id
        and parts.path.startswith("/")
        and "." not in segments
        and ".." not in segments
    )


class ClientDocuments:
    """Fetches, checks and caches client ID metadata documents.

    :param fetcher: a restricted fetcher (the URL is the client's choice).
    :param grants: the grant types the server offers (those of :data:`DOCUMENT_GRANTS` among them count).
    :param scopes: the scopes such clients may have (``registration_scopes``, else ``scopes``).
    :param max_age: the longest a document is kept (``client_document_max_age``).
    :param clock: the time cache entries expire by.

    Example::

        documents = ClientDocuments(Fetcher(timeout=5), ("authorization_code",), ("read",), 3600)
        client = documents.client("https://app.example/client.json")   # or UnusableClientDocument
    """

    def __init__(
        self,
        fetcher: Fetcher,
        grants: Iterable[str],
        scopes: Iterable[str],
        max_age: int,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.fetcher = fetcher
        self.grants = tuple(g for g in DOCUMENT_GRANTS if g in tuple(grants))
        self.scopes = tuple(scopes)
        self.max_age = max_age
        self.clock = clock
        self._cache: OrderedDict[str, tuple[float, Client | str]] = OrderedDict()
        self._lock = threading.Lock()

    def client(self, url: str) -> Client:
        """The client the document at ``url`` describes, from the cache while it is fresh.

        :raises UnusableClientDocument: it cannot be fetched or used (the reason is in the description).
        """
        now = self.clock.monotonic()
        with self._lock:
            cached = self._cache.get(url)
            if cached is not None and cached[0] > now:
                self._cache.move_to_end(url)
                found = cached[1]
                if isinstance(found, Client):
                    return found
                raise UnusableClientDocument(found)
        try:
            client, ttl = self._load(url)
        except (FetchError, OAuthError) as exc:
            reason = f"the client metadata document cannot be used: {_describe(exc)}"
            log.warning("client metadata document %s refused: %s", url[:200], _describe(exc))
            self._keep(url, reason, now + FAILURE_TTL)
            raise UnusableClientDocument(reason) from None
        self._keep(url, client, now + ttl)
        return client

    def _load(self, url: str) -> tuple[Client, int]:
        """Fetch and check the document; the client and the seconds it may be kept."""
        fetched = self.fetcher.fetch(url, MAX_DOCUMENT_SIZE, json_type=True)
        metadata = fetched.document
        if not isinstance(metadata, dict) or metadata.get("client_id") != url:
            raise FetchError("its client_id is not the URL it was fetched from")
        if "client_secret" in metadata or "client_secret_expires_at" in metadata:
            raise FetchError("it has a client_secret, which no document may have")
        if metadata.get("token_endpoint_auth_method", "none") not in ("none", "private_key_jwt"):
            raise FetchError("its token_endpoint_auth_method must be none or private_key_jwt")
        if not metadata.get("redirect_uris"):
            raise FetchError("it has no redirect_uris")
        scope = metadata.get("scope")
        if isinstance(scope, str):
            # Least privilege, without refusing a document written for many servers.
            metadata = {**metadata, "scope": " ".join(s for s in scope.split() if s in self.scopes) or None}
        registered = registered_client(
            url, metadata, secret_hash=None, grants=self.grants, scopes=self.scopes, default_method="none"
        )
        ttl = min(max(fetched.max_age or 0, MIN_TTL), self.max_age)
        return registered.client, ttl

    def _keep(self, url: str, entry: Client | str, until: float) -> None:
        with self._lock:
            self._cache[url] = (until, entry)
            self._cache.move_to_end(url)
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)


def _describe(exc: Exception) -> str:
    """A refusal's reason in the characters an ``error_description`` may hold."""
    return describable(exc.description if isinstance(exc, OAuthError) else str(exc), 200)


class ClientDirectory:
    """Every client the server knows: those registered, then those of metadata documents.

    A registered client wins, also one whose id is a URL (an operator may
    register a document's URL itself: the draft's pre-registration).

    :param clients: the registered clients (the repository).
    :param documents: the metadata documents; None when ``client_id_metadata_documents`` is off.
    """

    def __init__(self, clients: ClientSource, documents: ClientDocuments | None) -> None:
        self.clients = clients
        self.documents = documents

    def find_client(self, client_id: str) -> Client | None:
        """The client with this id, or None when there is none.

        :raises UnusableClientDocument: the id is a document URL whose document cannot be used.
        """
        client = self.clients.get_client(client_id)
        if client is None and self.documents is not None and is_document_url(client_id):
            return self.documents.client(client_id)
        return client

    def get_client(self, client_id: str) -> Client | None:
        """The client with this id, or None (also when its document cannot be used: that was logged)."""
        try:
            return self.find_client(client_id)
        except UnusableClientDocument:
            return None
