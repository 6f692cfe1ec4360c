"""JWT access tokens (RFC 9068): signed here, verified anywhere with a public key.

Nothing is stored for a token, so a guard checks it without touching the
store, unless ``jwt_check_revocation`` asks it to read the deny list. A
bounded cache of tokens already verified spares the signature check on the
requests that follow; an entry never outlives the token's ``exp``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import jwt

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigError, InvalidToken
from ..keys import Key, KeySet, load_keys
from ..models import AccessToken
from ..remote_keys import RemoteKeys
from ..repository import Repository
from ..resource_indicators import known_resources

if TYPE_CHECKING:
    from ..settings import Settings

log = logging.getLogger("oauth_middleware.tokens")

#: RFC 9068 §2.1: the ``typ`` header of an access token (case-insensitive, §4).
TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
#: Claims every token must carry (RFC 9068 §2.2); PyJWT refuses a token without one.
REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"]
_INVALID = "the access token is invalid or has expired"
#: A base64url segment without padding (RFC 7515 §2).
_SEGMENT = re.compile(r"[A-Za-z0-9_-]{2,4096}")


class VerifiedCache:
    """A bounded, thread-safe map of token string -> verified token.

    The oldest entry is dropped when full; an entry is dropped, never
    returned, once its token has expired.

    :param size: most entries kept; 0 disables the cache.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, AccessToken] = OrderedDict()
        self._lock = threading.Lock()
        #: Moves whenever a token is forgotten before its expiry (revoked here, or all cleared).
        self.epoch = 0

    def get(self, token: str, now: float) -> AccessToken | None:
        """The verified token, or None when unknown or expired."""
        if not self.size:
            return None
        with self._lock:
            access = self._entries.get(token)
            if access is None:
                return None
            if access.expires_at <= now:
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return access

    def put(self, access: AccessToken, now: float) -> None:
        """Remember a verified token until its ``exp``."""
        if not self.size or access.expires_at <= now:
            return
        with self._lock:
            self._entries[access.token] = access
            self._entries.move_to_end(access.token)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def discard(self, token: str) -> None:
        """Forget a token (it was revoked here)."""
        with self._lock:
            self.epoch += 1
            self._entries.pop(token, None)

    def clear(self) -> None:
        """Forget every token."""
        with self._lock:
            self.epoch += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class JWTTokens:
    """A :class:`~oauth_middleware.tokens.base.TokenFormat` of signed JWTs.

    :param keys: the signing key and every verification key.
    :param issuer: ``iss`` written and required.
    :param audience: ``aud`` written when a token is issued without resources (RFC 8707).
    :param resources: the other audiences tokens may be issued for (``resource``, RFC 8707).
        A token must name one of ``audience`` or ``resources``.
    :param ttl: lifetime of a new token, in seconds.
    :param leeway: clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
    :param extra_claim: the claim that carries a grant's extra data.
    :param repository: the deny list and refresh families; None on a guard
        that never checks revocation.
    :param check_revocation: look every token's ``jti`` up in the deny list.
    :param deleted_clients: with the deny list, also refuse the tokens of a client whose
        registration was deleted (RFC 7592 §2.3; one more store read).
    :param cache_size: verified tokens kept in memory; 0 for none.
    :param remote: keys fetched from another server's JWKS (``jwks_url``),
        asked for a ``kid`` that ``keys`` does not have.
    :param clock: the time ``iat`` and ``exp`` are written and checked by.

    Example::

        tokens = JWTTokens(load_keys(settings), issuer="https://auth.example.com",
                           audience=("https://api.example.com",), ttl=600)
        access = tokens.verify(token_string)
    """

    def __init__(
        self,
        keys: KeySet,
        *,
        issuer: str,
        audience: tuple[str, ...],
        resources: tuple[str, ...] = (),
        ttl: int,
        leeway: int = 10,
        extra_claim: str = "ext",
        repository: Repository | None = None,
        check_revocation: bool = False,
        deleted_clients: bool = False,
        cache_size: int = 1024,
        remote: RemoteKeys | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if check_revocation and repository is None:
            raise ValueError("checking revocation needs a repository")
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        #: Every audience a token may name.
        self.accepted = (*audience, *resources)
        self.ttl = ttl
        self.leeway = leeway
        self.extra_claim = extra_claim
        self.repository = repository
        self.check_revocation = check_revocation
        self.deleted_clients = deleted_clients
        self.cache = VerifiedCache(cache_size)
        self.remote = remote
        self.clock = clock

    @property
    def reads_store(self) -> bool:
        """Whether :meth:`verify` reads the store: only to check revocation."""
        return self.check_revocation

    def issue(
        self,
        *,
        client_id: str,
        user_id: str | None,
        scopes: tuple[str, ...],
        extra: Mapping[str, Any],
        family: str | None,
        jkt: str | None = None,
        audience: tuple[str, ...] = (),
        act: Mapping[str, Any] | None = None,
    ) -> AccessToken:
        """Sign a new token; with a ``family``, index its ``jti`` so the family can deny it.

        A DPoP-bound token carries its key's thumbprint as ``cnf.jkt`` (RFC 9449 §6.1),
        a delegated one its actor chain as ``act`` (RFC 8693 §4.1).
        Its ``aud`` is ``audience``, the resources of the request (RFC 9068 §3), or the
        ``audience`` setting when the request named none (what every token had before).
        """
        key = self.keys.signing
        if key is None:
            raise ConfigError("jwt_signing_key: this process has no key to sign tokens with")
        now = int(self.clock.time())
        jti = secrets.token_urlsafe(16)
        audience = audience or self.audience
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": user_id if user_id is not None else client_id,  # RFC 9068 §2.2
            "aud": audience[0] if len(audience) == 1 else list(audience),
            "client_id": client_id,
            "iat": now,
            "exp": now + self.ttl,
            "jti": jti,
        }
        if scopes:
            claims["scope"] = " ".join(scopes)
        if extra:
            claims[self.extra_claim] = dict(extra)
        if jkt is not None:
            claims["cnf"] = {"jkt": jkt}
        if act is not None:
            claims["act"] = dict(act)
        headers = {"typ": "at+jwt", "kid": key.kid}
        token = jwt.encode(claims, key.signer, algorithm=key.alg, headers=headers)
        access = AccessToken(
            token, client_id, user_id, scopes, now + self.ttl, dict(extra), jti, jkt, tuple(audience), act
        )
        if family is not None:
            self.join_family(access, family)
        return access

    def stamp(self) -> Hashable | None:
        """Verdicts hold while no token was forgotten here and, with revocation checks, none ended.

        None without the verified-token cache (every request checks the
        signature) or when the guard's token cache cannot vouch for the deny list.
        """
        if not self.cache.size:
            return None
        if not self.check_revocation:
            return self.cache.epoch
        repository = self.repository
        denied = None if repository is None else repository.stamp()
        return None if denied is None else (self.cache.epoch, denied)

    def verify(self, token: str) -> AccessToken:
        """The valid token, from the cache or by checking its signature and claims.

        :raises InvalidToken: bad signature, header or claim; expired; revoked
            (only when revocation checking is on).
        :raises StoreUnavailable: the deny list cannot be read.
        """
        now = self.clock.time()
        access = self.cache.get(token, now)
        if access is None:
            access = self.decode(token)
            self.cache.put(access, now)
        if self.check_revocation and self.is_revoked(access, cached=True):
            raise InvalidToken(_INVALID)
        return access

    def introspect(self, token: str) -> AccessToken | None:
        """The token if its signature and claims hold and it is not revoked, else None."""
        try:
            access = self.decode(token)
        except InvalidToken:
            return None
        return None if self.is_revoked(access) else access

    def revoke(self, token: AccessToken) -> None:
        """Deny the token's ``jti`` until it would have failed its ``exp`` check anyway."""
        if self.repository is None:
            raise ConfigError("store: revoking JWTs needs the store")
        self.repository.deny_jwt(token.token_id, token.expires_at + self.leeway)
        self.cache.discard(token.token)

    def join_family(self, token: AccessToken, family: str) -> None:
        """Index the token's ``jti`` in ``family``, so that revoking the family denies it."""
        if self.repository is None:
            return  # a process without a store never revokes a family
        deny_until = token.expires_at + self.leeway
        self.repository.index_jwt(
            family, token.token_id, deny_until, max(1, deny_until - int(self.clock.time()))
        )

    def is_revoked(self, token: AccessToken, *, cached: bool = False) -> bool:
        """True when the token's ``jti`` is on the deny list, or (``deleted_clients``) its client's
        registration was deleted after it was issued.

        :param cached: the deny list's answer may come from the guard's token cache
            (it is given the token's ``exp``); introspection always asks the store.
        """
        repository = self.repository
        return repository is not None and (
            repository.is_jwt_denied(token.token_id, token.expires_at if cached else None)
            or (self.deleted_clients and repository.is_deleted_clients_token(token))
        )

    def decode(self, token: str) -> AccessToken:
        """Check the header, signature and claims of a token (no cache, no deny list).

        The algorithm comes from the key the ``kid`` names, never from the token.
        """
        key = self.key_for(token)
        try:
            claims = jwt.decode(
                token,
                key.verifier,
                algorithms=[key.alg],
                # Any audience this server issues for; the guard checks it names its own resource.
                audience=list(self.accepted),
                issuer=self.issuer,
                # The times are checked below, by this server's clock rather than PyJWT's.
                options={
                    "require": REQUIRED_CLAIMS,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except (jwt.InvalidTokenError, RecursionError) as exc:
            # PyJWT parses the header again, in a deeper stack than unverified_header().
            _rejected(type(exc).__name__)
        _check_times(claims, self.clock.time(), self.leeway)
        return self._access_token(token, claims)

    def key_for(self, token: str) -> Key:
        """The verification key named by the token's ``kid``, if its ``typ`` is right."""
        header = unverified_header(token)
        typ, kid = header.get("typ"), header.get("kid")
        if not isinstance(typ, str) or typ.lower() not in TOKEN_TYPES:
            _rejected("wrong typ")
        if not isinstance(kid, str):
            _rejected("no kid")
        key = self.keys.verification.get(kid)
        if key is None and self.remote is not None:
            key = self.remote.find(kid)  # may refetch the JWKS, bounded in time
        if key is None:
            _rejected("unknown kid")
        return key

    def _access_token(self, token: str, claims: Mapping[str, Any]) -> AccessToken:
        client_id, sub, jti = claims["client_id"], claims["sub"], claims["jti"]
        scope, extra = claims.get("scope", ""), claims.get(self.extra_claim, {})
        if not all(isinstance(v, str) for v in (client_id, sub, jti, scope)) or not isinstance(extra, dict):
            _rejected("claim of the wrong type")
        aud = claims["aud"]
        audience = (aud,) if isinstance(aud, str) else tuple(aud) if isinstance(aud, list) else ()
        if not audience or not all(isinstance(value, str) and value for value in audience):
            _rejected("aud of the wrong type")
        act = claims.get("act")
        if act is not None and not isinstance(act, dict):
            _rejected("act of the wrong type")
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        if cnf is not None and not isinstance(jkt, str):
            # A confirmation this guard cannot check (mTLS x5t#S256, a malformed one) binds the
            # token to something no request here can prove: refuse it rather than accept it as bearer.
            _rejected("cnf without a jkt")
        return AccessToken(
            token=token,
            client_id=client_id,
            # A client-only token names the client as sub (RFC 9068 §2.2).
            user_id=None if sub == client_id else sub,
            scopes=tuple(scope.split()),
            expires_at=int(claims["exp"]),
            extra=extra,
            token_id=jti,
            jkt=jkt,
            audience=audience,
            act=act,
        )


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, only to find the key; PyJWT checks it all again.

    Parsed here rather than with ``jwt.get_unverified_header``, which would
    decode and check every segment of the token a second time.
    """
    head, dot, _ = token.partition(".")
    if not dot or not _SEGMENT.fullmatch(head):
        _rejected("malformed header")
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        # RecursionError: deeply nested JSON ("[[[[..."), which no key lookup needs.
        _rejected("malformed header")
    if not isinstance(header, dict):
        _rejected("malformed header")
    return header


def _check_times(claims: Mapping[str, Any], now: float, leeway: int) -> None:
    """Refuse a token past its ``exp``, or issued (``iat``) or valid (``nbf``) only in the future.

    The checks PyJWT makes (RFC 7519 §4.1.4-6), made with ``now`` from the
    server's clock; each allows ``leeway`` seconds of skew.
    """
    times = [claims["exp"], claims["iat"], claims.get("nbf")]
    if not all(_is_time(value) for value in times if value is not None):
        _rejected("time claim of the wrong type")
    exp, iat, nbf = times
    if exp <= now - leeway:
        _rejected("ExpiredSignatureError")
    if iat > now + leeway or (nbf is not None and nbf > now + leeway):
        _rejected("ImmatureSignatureError")


def _is_time(value: object) -> bool:
    """A NumericDate: a finite number (JSON allows no NaN, yet Python's parser takes one)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _rejected(reason: str) -> NoReturn:
    """Log why a JWT was refused (never sent to the client) and raise ``invalid_token``."""
    log.info("JWT access token rejected: %s", reason)
    raise InvalidToken(_INVALID)


def jwt_tokens(
    settings: Settings, repository: Repository | None, *, issuing: bool = True, clock: Clock = SYSTEM_CLOCK
) -> JWTTokens:
    """The JWT token format described by the settings, keys loaded now.

    :param repository: the store's repository; may be None on a guard that
        does not check revocation.
    :param issuing: False on a guard-only resource server (no signing key needed).
    :param clock: the time tokens are issued and checked by, and the JWKS refetched by.
    :raises ConfigError: a key cannot be loaded or the ``jwks_url`` cannot be
        fetched (the combinations of settings are checked by
        :meth:`~oauth_middleware.settings.Settings.check_role`).
    """
    key_files = (
        settings.jwt_signing_key,
        settings.jwt_secret,
        settings.jwt_verification_keys,
        settings.jwt_jwks_file,
    )
    # With jwks_url, key files are optional: the fetched keys may be all there is.
    keys = (
        load_keys(settings, signing=issuing) if any(key_files) or not settings.jwks_url else KeySet(None, {})
    )
    remote = None
    if settings.jwks_url:
        remote = RemoteKeys(
            settings.jwks_url,
            interval=settings.jwks_refetch_interval,
            timeout=settings.jwks_timeout,
            clock=clock.monotonic,
        )
        remote.load()
    return JWTTokens(
        keys,
        issuer=settings.issuer,
        audience=settings.audience,
        resources=known_resources(settings),
        ttl=settings.access_token_ttl,
        leeway=settings.jwt_leeway,
        extra_claim=settings.jwt_extra_claim,
        repository=repository,
        check_revocation=settings.jwt_check_revocation,
        deleted_clients=settings.registration != "off",
        cache_size=settings.jwt_cache_size,
        remote=remote,
        clock=clock,
    )
