"""The authorization server's parts, wired once from the settings."""

from __future__ import annotations

import logging

from .clients import load_clients_file
from .clock import SYSTEM_CLOCK, Clock
from .consent import Pages
from .errors import ConfigError
from .grants import REGISTRY, Grant, load_grant
from .repository import Repository
from .scopes import ScopePolicy
from .serverkey import derive_key, master_key
from .settings import Settings
from .stores import Store, StoreConfig, open_store
from .throttle import Throttle
from .tokens import TokenFormat
from .tokens.issuer import TokenIssuer
from .tokens.jwt import jwt_tokens
from .tokens.opaque import OpaqueTokens
from .tokens.refresh import RefreshTokens
from .tokens.unique import UniqueTokens
from .users import SessionCookies, Users

log = logging.getLogger("oauth_middleware")


def store_from_settings(settings: Settings, clock: Clock = SYSTEM_CLOCK) -> Store:
    """Open the configured store (a one-line ``ConfigError`` if it cannot be), expiring by ``clock``."""
    return open_store(StoreConfig(settings.store, settings.store_timeout, settings.store_prefix, clock))


def client_store_from_settings(settings: Settings) -> Store | None:
    """Open the ``client_store`` setting's store; None when clients live in ``store``."""
    if not settings.client_store or settings.client_store == settings.store:
        return None
    config = StoreConfig(settings.client_store, settings.store_timeout, settings.store_prefix)
    return open_store(config, setting="client_store")


def token_format_from_settings(
    settings: Settings, repository: Repository | None, *, issuing: bool = True, clock: Clock = SYSTEM_CLOCK
) -> TokenFormat:
    """The access-token format named by ``token_format``.

    :param repository: None only on a guard that verifies JWTs without
        revocation checks, which never touches a store.
    :param issuing: False on a guard-only resource server: no signing key needed.
    :param clock: the time tokens expire by.
    """
    if settings.token_format == "jwt":
        return jwt_tokens(settings, repository, issuing=issuing, clock=clock)
    if repository is None:
        raise ConfigError("store: opaque access tokens are looked up in the store")
    return OpaqueTokens(repository, settings.access_token_ttl, settings.token_generator, clock=clock)


class AuthorizationServer:
    """Everything the endpoints share: settings, store, tokens, grants.

    :param settings: the converted settings.
    :param store: an already open store (tests); by default the ``store``
        setting is opened.
    :param clock: the time every part reads (tests move a fake one).
    """

    def __init__(
        self, settings: Settings, store: Store | None = None, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        if not settings.issuer:
            # RFC 8414 §3.3: the issuer is configured, never read from a request's Host header.
            raise ConfigError("issuer: required: this server's URL, e.g. issuer = https://auth.example.com")
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
        self.repository = Repository(self.store, client_store, clock=clock)
        if settings.store.startswith("memcache:") and not settings.client_store:
            log.warning(
                "store: memcached may evict or lose clients (restart, memory pressure); "
                "keep them in a durable client_store"
            )
        self.tokens = token_format_from_settings(settings, self.repository, clock=clock)
        #: Key behind sessions, CSRF tokens and kept unique tokens (``session_secret``).
        self.key = master_key(settings.session_secret)
        unique = (
            UniqueTokens(self.repository, self.tokens, derive_key(self.key, "unique-tokens"), clock=clock)
            if settings.unique_tokens
            else None
        )
        self.issuer = TokenIssuer(self.tokens, settings.access_token_ttl, unique, clock=clock)
        self.refresh_tokens = RefreshTokens(self.repository, settings, clock=clock)
        sessions = SessionCookies(
            derive_key(self.key, "session"), settings.session_cookie, settings.session_ttl, clock=clock
        )
        self.users = Users(settings, sessions)
        self.pages = Pages(settings, derive_key(self.key, "csrf"))
        self.scope_policy = ScopePolicy(settings.scopes, settings.default_scope)
        self.throttle = Throttle(self.repository, settings, clock=clock)
        self.grants: dict[str, Grant] = {}
        for grant_type in settings.grants:
            if grant_type not in REGISTRY:
                raise ConfigError(f"grants: unknown grant type {grant_type!r} (known: {', '.join(REGISTRY)})")
            self.grants[grant_type] = load_grant(grant_type)(self)
        if settings.clients_file:
            for client in load_clients_file(settings.clients_file, settings.scopes):
                self.repository.save_client(client)

    def close(self) -> None:
        """Close the stores this server opened (``store`` and ``client_store``).

        A store passed in stays open: it is its owner's to close. The stores
        reconnect on their next use, so a request after close() still works.
        """
        for store in self._owned:
            store.close()
