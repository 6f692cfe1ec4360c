"""The wiring: the authorization server's parts, built once from the settings.

The one module that knows how the parts fit. It builds them and is itself
the narrow context each consumer is handed: grants see a
:class:`~oauth_middleware.grants.GrantContext`, the endpoints an
:class:`~oauth_middleware.endpoints.EndpointContext`, password checks a
:class:`~oauth_middleware.throttle.PasswordContext`. Only the WSGI edge
(:mod:`oauth_middleware.middleware`) imports this module; the consumers import
their Protocol, never the server (an import-linter contract keeps it so).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webob import Request

from .authorization import AuthorizationRequest
from .client_auth import ClientAssertions, ClientAuthenticator
from .client_auth.assertions import ASSERTION_ALGORITHMS
from .client_documents import ClientDirectory, ClientDocuments
from .clients import load_clients_file
from .clock import SYSTEM_CLOCK, Clock
from .dpop import ProofVerifier
from .endpoints.authorize import AuthorizeContext
from .grants import Grant, GrantContext, grant_types_supported, token_grants
from .grants.authorization_code import issue_code
from .grants.base import list_grant
from .interaction import Interaction, Pages
from .models import Client
from .peer_jwts import PeerJWTs
from .profile import PROFILES
from .resource_indicators import ResourcePolicy
from .scopes import ScopePolicy
from .serverkey import derive_key, master_key
from .settings import Settings
from .stores import Store
from .throttle import Throttle, verify_password
from .token_data import TokenData
from .token_types import BearerToken, DPoPToken
from .tokens.issuer import TokenIssuer
from .tokens.refresh import RefreshTokens, new_family
from .tokens.unique import UniqueTokens
from .trusted_issuers import TrustedIssuers
from .users import Identity, SessionCookies, Users
from .wiring import (
    client_store_from_settings,
    repository_from_settings,
    store_from_settings,
    token_format_from_settings,
)


class AuthorizationServer:
    """Everything the endpoints share: settings, store, tokens, grants; each consumer's context.

    :param settings: the converted settings.
    :param store: an already open store (tests); by default the ``store``
        setting is opened.
    :param clock: the time every part reads (tests move a fake one).
    """

    def __init__(
        self, settings: Settings, store: Store | None = None, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        # What only this filter needs (issuer, ...), before anything is opened.
        settings.check_role("oauth2")
        self.settings = settings
        # What close() closes: the stores opened here, not one the caller passed in.
        self._owned: list[Store] = []
        self.clock = clock
        if store is None:
            store = store_from_settings(settings, clock)
            self._owned.append(store)
        self.store = store
        client_store = client_store_from_settings(settings)
        if client_store is not None:
            self._owned.append(client_store)
        self.repository = repository_from_settings(settings, self.store, client_store, clock)
        self.tokens = token_format_from_settings(settings, self.repository, clock=clock)
        #: Key behind sessions, CSRF tokens and kept unique tokens (``session_secret``).
        self.key = master_key(settings.session_secret)
        unique = (
            UniqueTokens(self.repository, self.tokens, derive_key(self.key, "unique-tokens"), clock=clock)
            if settings.unique_tokens
            else None
        )
        self.issuer = TokenIssuer(
            self.tokens, settings.access_token_ttl, unique, token_type=BearerToken.scheme, clock=clock
        )
        self.refresh_tokens = RefreshTokens(self.repository, settings, clock=clock)
        sessions = SessionCookies(
            derive_key(self.key, "session"), settings.session_cookie, settings.session_ttl, clock=clock
        )
        self.users = Users(settings, sessions)
        self.token_data = TokenData(settings.token_claims, settings.token_data_max_bytes)
        self.pages = Pages(settings, derive_key(self.key, "csrf"))
        self.scope_policy = ScopePolicy(settings.scopes, settings.default_scope)
        self.resource_policy = ResourcePolicy.from_settings(settings)
        self.throttle = Throttle(self.repository, settings, clock=clock)
        #: Checks of JWTs other parties sign: client assertions, JWT grants, exchanged tokens.
        self.peer_jwts = PeerJWTs.from_settings(settings, clock)
        documents = (
            ClientDocuments(
                self.peer_jwts.fetcher,  # the one restricted fetcher for every URL a client names
                grant_types_supported(settings),
                settings.registration_scopes or settings.scopes,
                settings.client_document_max_age,
                clock=clock,
            )
            if settings.client_id_metadata_documents
            else None
        )
        #: Registered clients, then (when on) those of client ID metadata documents.
        self.clients = ClientDirectory(self.repository, documents)
        #: The security profile's per-request restrictions (``profile``), handed to the parts that apply them.
        self.profile = PROFILES[settings.profile]
        assertions = ClientAssertions.from_settings(
            settings,
            self.repository,
            self.peer_jwts,
            algorithms=tuple(self.profile.signing_algorithms(ASSERTION_ALGORITHMS)),
            audience_string_only=self.profile.audience_string_only,
        )
        self.client_auth = ClientAuthenticator(
            self.clients, self.throttle, assertions, self.profile.auth_methods
        )
        self.dpop = (
            ProofVerifier.from_settings(settings, self.repository)
            if DPoPToken.scheme in settings.token_types
            else None
        )
        self.trusted_issuers = TrustedIssuers.load(settings.trusted_issuers_file, self.peer_jwts)
        grant_context: GrantContext = self
        self.grants: dict[str, Grant] = {
            name: cls(grant_context) for name, cls in token_grants(settings).items()
        }
        self.authorize_context: AuthorizeContext = AuthorizeWiring(self)
        if settings.clients_file:
            for client in load_clients_file(settings.clients_file, settings.scopes):
                where = f"clients_file: [client:{client.client_id}]"
                self.profile.check_client(client, where)
                self.repository.save_client(client)
        # A client_secret_jwt secret that cannot be opened is a one-line error now, not a 401 later.
        assertions.check_sealed_secrets(self.repository.list_clients())

    def close(self) -> None:
        """Close the stores this server opened (``store`` and ``client_store``).

        A store passed in stays open: it is its owner's to close. The stores
        reconnect on their next use, so a request after close() still works.
        """
        if self.repository.cache is not None:
            self.repository.cache.close()  # its listener's connection
        for store in self._owned:
            store.close()


class AuthorizeWiring:
    """The authorization endpoint's and the interaction's view of the server (an ``AuthorizeContext``).

    :param server: the authorization server (only this class reads it).
    """

    def __init__(self, server: AuthorizationServer) -> None:
        self._server = server
        self.settings = server.settings
        self.repository = server.repository
        self.clients = server.clients
        self.scope_policy = server.scope_policy
        self.resource_policy = server.resource_policy
        self.clock = server.clock
        self.users = server.users
        self.pages = server.pages
        self.login_url = server.settings.login_url
        self.interaction = Interaction(self)

    def remembers_consent(self, client: Client) -> bool:
        """Whether an approval for ``client`` is remembered, and may answer the next request.

        Never for a public client: anyone can send its ``client_id``, and a local
        program can listen on a loopback redirect URI, so only the user can
        tell the real app from an impostor (RFC 8252 §8.6, RFC 6749 §10.2).
        """
        return self.settings.remember_consent and not client.is_public

    def has_consent(self, user_id: str, client_id: str, scopes: tuple[str, ...]) -> bool:
        """Whether the user approved these scopes for this client before."""
        return self.repository.has_consent(user_id, client_id, scopes)

    def save_consent(self, user_id: str, client_id: str, scopes: tuple[str, ...]) -> None:
        """Remember the user's approval for ``consent_ttl``."""
        self.repository.save_consent(user_id, client_id, scopes, self.settings.consent_ttl)

    def check_password(
        self, request: Request, username: str, password: str, client_id: str
    ) -> Identity | None:
        """The user for these credentials behind the throttle, as the password grant's."""
        return verify_password(
            self._server, request, username, password, where="login page", client_id=client_id
        )

    def issue_code(self, request: AuthorizationRequest, user: Identity) -> str:
        """A stored code for an approved request, carrying the user's data."""
        return issue_code(self._server, request, user)

    def issue_token(self, request: AuthorizationRequest, user: Identity) -> Mapping[str, Any]:
        """An access token for an approved implicit request, with the grant's data."""
        server, grant_type, family = self._server, "implicit", new_family()
        # A family of its own, so that revoke_grants ends the token too.
        list_grant(
            server,
            request.client.client_id,
            user.user_id,
            family,
            request.scopes,
            server.settings.access_token_ttl,
        )
        extra = server.token_data.for_grant(
            request.client, user.user_id, grant_type, request.scopes, user.data
        )
        # RFC 6749 §4.2.2: no refresh token with the implicit grant.
        return server.issuer.issue(
            client=request.client,
            user_id=user.user_id,
            scopes=request.scopes,
            grant_type=grant_type,
            extra=extra,
            family=family,
            audience=request.resources,
        )
