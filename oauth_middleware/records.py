"""The short-lived records the repository keeps, as typed values.

Each record converts to and from the plain ``dict`` a store holds
(:meth:`to_value` / :meth:`from_value`), with the one- and two-letter keys
of the stores written by 0.1 and 0.2: the guard reads a record on every
request, and records already in a store must keep loading. Only this module
knows those keys; only :mod:`oauth_middleware.repository` knows the store
key each record lives under.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .models import AccessToken

__all__ = [
    "AccessTokenRecord",
    "BlockRecord",
    "CodeRecord",
    "CodeUsedMarker",
    "ConsentRecord",
    "DenyEntry",
    "DeviceCodeRecord",
    "GrantRecord",
    "PushedRequestRecord",
    "RefreshTokenRecord",
    "RegistrationRecord",
    "RotationMarker",
    "UniqueTokenRecord",
    "UsedJtiRecord",
]


@dataclass(frozen=True, slots=True)
class AccessTokenRecord:
    """An opaque access token as stored under its hash (``at:``).

    :param client_id: the client it was issued to.
    :param user_id: the resource owner, or None for client-only tokens.
    :param scopes: the granted scopes.
    :param expires_at: expiry, Unix time.
    :param extra: extra data the grant attached.
    :param family: the grant (code or refresh chain) it was issued from, if any.
    :param jkt: the DPoP key thumbprint it is bound to (RFC 9449 §6), or None.
    :param audience: the resources it is for (RFC 8707), empty when none was requested.
    :param act: the actor chain of a delegated token (RFC 8693 §4.1), or None.
    """

    client_id: str
    user_id: str | None
    scopes: tuple[str, ...]
    expires_at: int
    extra: Mapping[str, Any] = field(default_factory=dict)
    family: str | None = None
    jkt: str | None = None
    audience: tuple[str, ...] = ()
    act: Mapping[str, Any] | None = None

    def access_token(self, token: str, token_id: str) -> AccessToken:
        """The token as the guard hands it to the app."""
        return AccessToken(
            token,
            self.client_id,
            self.user_id,
            self.scopes,
            self.expires_at,
            self.extra,
            token_id,
            self.jkt,
            self.audience,
            self.act,
        )

    def to_value(self) -> dict[str, Any]:
        """The dict kept in the store (``k`` only for a bound token, ``a`` only with an audience,
        ``ac`` only for a delegated token: other records stay as they were)."""
        value = {
            "c": self.client_id,
            "u": self.user_id,
            "s": list(self.scopes),
            "e": self.expires_at,
            "x": dict(self.extra),
            "f": self.family,
        }
        if self.jkt is not None:
            value["k"] = self.jkt
        if self.audience:
            value["a"] = list(self.audience)
        if self.act is not None:
            value["ac"] = dict(self.act)
        return value

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> AccessTokenRecord:
        """Rebuild a record from :meth:`to_value` output."""
        return cls(
            value["c"],
            value["u"],
            tuple(value["s"]),
            value["e"],
            value["x"],
            value.get("f"),
            value.get("k"),
            tuple(value.get("a", ())),
            value.get("ac"),
        )

    @staticmethod
    def access_token_from_value(value: Mapping[str, Any], token: str, token_id: str) -> AccessToken:
        """``from_value(value).access_token(token, token_id)``, without the record in between.

        The guard's path for opaque tokens, taken on every request: one
        frozen object built instead of two.
        """
        return AccessToken(
            token,
            value["c"],
            value["u"],
            tuple(value["s"]),
            value["e"],
            value["x"],
            token_id,
            value.get("k"),
            tuple(value.get("a", ())),
            value.get("ac"),
        )


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    """A refresh token as stored under its hash (``rt:``): one link of a rotation chain.

    :param client_id: the client it was issued to (RFC 6749 §6: bound to it).
    :param user_id: the resource owner, or None.
    :param scopes: the scope of the grant; a refresh may ask for less, never more.
    :param expires_at: expiry of this token, Unix time.
    :param family: the grant it belongs to; revoked together.
    :param chain_expires_at: when the whole rotation chain ends; a rotated
        token never outlives it.
    :param jkt: the DPoP key a public client's token is bound to (RFC 9449 §5), or None.
    :param audience: the resources of the grant (RFC 8707 §2.2: a refresh may ask for
        fewer, never others); empty when none was requested.
    :param extra: the grant's data (:mod:`~oauth_middleware.token_data`), for every access token refreshed.
    """

    client_id: str
    user_id: str | None
    scopes: tuple[str, ...]
    expires_at: int
    family: str
    chain_expires_at: int
    jkt: str | None = None
    audience: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def expired(self, now: float) -> bool:
        """True from ``expires_at`` on."""
        return self.expires_at <= now

    def to_value(self) -> dict[str, Any]:
        """The dict kept in the store (``k`` only for a bound token, ``a`` only with an audience,
        ``x`` only with data)."""
        value: dict[str, Any] = {
            "c": self.client_id,
            "u": self.user_id,
            "s": list(self.scopes),
            "e": self.expires_at,
            "f": self.family,
            "ce": self.chain_expires_at,
        }
        if self.jkt is not None:
            value["k"] = self.jkt
        if self.audience:
            value["a"] = list(self.audience)
        if self.extra:
            value["x"] = dict(self.extra)
        return value

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> RefreshTokenRecord:
        """Rebuild a record from :meth:`to_value` output (0.1 wrote no ``ce``: the token's own expiry)."""
        return cls(
            client_id=value["c"],
            user_id=value["u"],
            scopes=tuple(value["s"]),
            expires_at=value["e"],
            family=value["f"],
            chain_expires_at=value.get("ce", value["e"]),
            jkt=value.get("k"),
            audience=tuple(value.get("a", ())),
            extra=value.get("x", {}),
        )


@dataclass(frozen=True, slots=True)
class RotationMarker:
    """What is left of a rotated refresh token (``used:``), to detect its reuse.

    :param token: the rotated token's record (the chain's data).
    :param rotated_at: when it was rotated, Unix time (the reuse grace counts from it).
    :param reused: it was presented again after its grace: its family is revoked.
    """

    token: RefreshTokenRecord
    rotated_at: int
    reused: bool = False

    def as_reused(self) -> RotationMarker:
        """This marker, marked as reused."""
        return replace(self, reused=True)

    def to_value(self) -> dict[str, Any]:
        """The dict kept in the store: the token's fields, ``t`` and, once reused, ``r``."""
        value = self.token.to_value()
        value["t"] = self.rotated_at
        if self.reused:
            value["r"] = True
        return value

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> RotationMarker:
        """Rebuild a marker from :meth:`to_value` output."""
        return cls(RefreshTokenRecord.from_value(value), rotated_at=value["t"], reused=bool(value.get("r")))


@dataclass(frozen=True, slots=True)
class CodeRecord:
    """An authorization code as stored under its hash (``code:``).

    :param client_id: the client it was issued to.
    :param redirect_uri: the redirect URI it was sent to.
    :param redirect_uri_given: the authorization request named ``redirect_uri``
        (then the token request must name the same, RFC 6749 §4.1.3).
    :param scopes: the approved scopes.
    :param user_id: who approved.
    :param code_challenge: the PKCE challenge, if any (RFC 7636).
    :param code_challenge_method: ``S256`` or ``plain``, with a challenge.
    :param expires_at: expiry, Unix time.
    :param dpop_jkt: the DPoP key thumbprint the request bound the code to (RFC 9449 §10), or None.
    :param audience: the ``resource`` values of the authorization request (RFC 8707 §2.1).
    :param extra: the data the user hooks answered with the user (:mod:`~oauth_middleware.token_data`).
    """

    client_id: str
    redirect_uri: str
    redirect_uri_given: bool
    scopes: tuple[str, ...]
    user_id: str
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: int
    dpop_jkt: str | None = None
    audience: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def expired(self, now: float) -> bool:
        """True from ``expires_at`` on."""
        return self.expires_at <= now

    def to_value(self) -> dict[str, Any]:
        """The dict kept in the store."""
        return {
            "c": self.client_id,
            "r": self.redirect_uri,
            "rg": self.redirect_uri_given,
            "s": list(self.scopes),
            "u": self.user_id,
            "cc": self.code_challenge,
            "cm": self.code_challenge_method,
            "e": self.expires_at,
            **({"dk": self.dpop_jkt} if self.dpop_jkt is not None else {}),
            **({"a": list(self.audience)} if self.audience else {}),
            **({"x": dict(self.extra)} if self.extra else {}),
        }

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> CodeRecord:
        """Rebuild a record from :meth:`to_value` output."""
        return cls(
            client_id=value["c"],
            redirect_uri=value["r"],
            redirect_uri_given=value["rg"],
            scopes=tuple(value["s"]),
            user_id=value["u"],
            code_challenge=value["cc"],
            code_challenge_method=value["cm"],
            expires_at=value["e"],
            dpop_jkt=value.get("dk"),
            audience=tuple(value.get("a", ())),
            extra=value.get("x", {}),
        )


@dataclass(frozen=True, slots=True)
class PushedRequestRecord:
    """A pushed authorization request (RFC 9126) as stored under the hash of its ``request_uri`` (``par:``).

    :param client_id: the client that pushed it; only it may use the ``request_uri``.
    :param params: the pushed parameters, validated when pushed and again when used.
    :param expires_at: expiry, Unix time.
    :param resources: the pushed ``resource`` values (RFC 8707), which may repeat.
    """

    client_id: str
    params: Mapping[str, str]
    expires_at: int
    resources: tuple[str, ...] = ()

    def expired(self, now: float) -> bool:
        """True from ``expires_at`` on."""
        return self.expires_at <= now

    def to_value(self) -> dict[str, Any]:
        """The dict kept in the store."""
        value = {"c": self.client_id, "p": dict(self.params), "e": self.expires_at}
        if self.resources:
            value["a"] = list(self.resources)
        return value

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> PushedRequestRecord:
        """Rebuild a record from :meth:`to_value` output."""
        return cls(value["c"], dict(value["p"]), value["e"], tuple(value.get("a", ())))


@dataclass(frozen=True, slots=True)
class CodeUsedMarker:
    """A redeemed code (``code-used:``).

    :param family: the family of the tokens issued from it.
    :param replayed: it was presented again (RFC 6749 §4.1.2).
    """

    family: str
    replayed: bool = False

    def to_value(self) -> dict[str, Any]:
        """The dict kept in the store."""
        return {"f": self.family, "r": True} if self.replayed else {"f": self.family}

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> CodeUsedMarker:
        """Rebuild a marker from :meth:`to_value` output."""
        return cls(value["f"], replayed=bool(value.get("r")))


@dataclass(frozen=True, slots=True)
class DenyEntry:
    """A revoked JWT's ``jti`` on the deny list (``deny:``).

    :param until: Unix time after which the token fails its ``exp`` check anyway.
    """

    until: int

    def to_value(self) -> dict[str, Any]:
        """The dict kept in the store."""
        return {"u": self.until}

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> DenyEntry:
        """Rebuild an entry from :meth:`to_value` output."""
        return cls(value["u"])


@dataclass(frozen=True, slots=True)
class BlockRecord:
    """A throttled subject (``block:``).

    :param until: Unix time the block ends.
    """

    until: float

    def to_value(self) -> dict[str, Any]:
        """The dict kept in the store."""
        return {"u": self.until}

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> BlockRecord:
        """Rebuild a record from :meth:`to_value` output."""
        return cls(float(value["u"]))


@dataclass(frozen=True, slots=True)
class UniqueTokenRecord:
    """The current access token of one client, user, grant type and scope set (``unique:``).

    :param sealed: the token, encrypted (nonce and AES-GCM ciphertext): tokens
        are never stored in clear.
    """

    sealed: bytes

    def to_value(self) -> dict[str, Any]:
        """The dict kept in the store."""
        return {"t": base64.b64encode(self.sealed).decode("ascii")}

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> UniqueTokenRecord:
        """Rebuild a record from :meth:`to_value` output.

        :raises ValueError: the value is not one (a garbled store entry).
        """
        try:
            return cls(base64.b64decode(value["t"]))
        except (KeyError, TypeError) as exc:
            raise ValueError("not a unique-token record") from exc


@dataclass(frozen=True, slots=True)
class UsedJtiRecord:
    """A single-use JWT's ``jti`` already accepted, refused again until it expires.

    Kept for DPoP proofs (``dpop:``, RFC 9449 §11.1) and client assertions
    (``assertion:``, RFC 7523 §3).

    :param seen_at: when it was accepted, Unix time.
    """

    seen_at: int

    def to_value(self) -> dict[str, Any]:
        """The dict kept in the store."""
        return {"t": self.seen_at}

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> UsedJtiRecord:
        """Rebuild a record from :meth:`to_value` output."""
        return cls(value["t"])


#: Member of every remembered approval, so that one of no scope is remembered too.
#: A space is never part of a scope token (RFC 6749 §3.3), so no scope can be it.
APPROVED = " approved"


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """The scopes a user approved for a client (``consent:``, a set index).

    Kept as a set rather than one value, so approvals given at the same time
    are all kept (every store adds to a set atomically).

    :param scopes: every scope approved so far.
    """

    scopes: frozenset[str]

    def covers(self, scopes: tuple[str, ...]) -> bool:
        """True when every one of ``scopes`` was approved."""
        return set(scopes) <= self.scopes

    def to_members(self) -> tuple[str, ...]:
        """The set members, :data:`APPROVED` last (a partly written approval is not one)."""
        return (*sorted(self.scopes), APPROVED)

    @classmethod
    def from_members(cls, members: set[str]) -> ConsentRecord | None:
        """The approval in a set index, or None when there is none (or not a whole one yet)."""
        if APPROVED not in members:
            return None
        return cls(frozenset(members - {APPROVED}))


@dataclass(frozen=True, slots=True)
class DeviceCodeRecord:
    """A device authorization (RFC 8628 §3.2) under the hash of its device code (``device:``).

    :param client_id: the client that asked; only it may poll with the device code.
    :param scopes: the scopes the user is asked for.
    :param user_code_id: the hash of its (normalised) user code, the ``user-code:`` key.
    :param expires_at: expiry, Unix time; the record is kept twice as long, so a late
        poll is ``expired_token`` rather than an unknown code.
    :param status: ``pending``, ``approved`` or ``denied``.
    :param user_id: the user who approved it.
    :param audience: the resources (RFC 8707) its tokens may be for.
    :param extra: the data the user hooks answered with that user (:mod:`~oauth_middleware.token_data`).
    """

    client_id: str
    scopes: tuple[str, ...]
    user_code_id: str
    expires_at: int
    status: str = "pending"
    user_id: str | None = None
    audience: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def expired(self, now: float) -> bool:
        """True from ``expires_at`` on."""
        return self.expires_at <= now

    def to_value(self) -> dict[str, Any]:
        """The dict kept in the store."""
        return {
            "c": self.client_id,
            "s": list(self.scopes),
            "uc": self.user_code_id,
            "e": self.expires_at,
            "st": self.status,
            "u": self.user_id,
            **({"a": list(self.audience)} if self.audience else {}),
            **({"x": dict(self.extra)} if self.extra else {}),
        }

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> DeviceCodeRecord:
        """Rebuild a record from :meth:`to_value` output."""
        return cls(
            client_id=value["c"],
            scopes=tuple(value["s"]),
            user_code_id=value["uc"],
            expires_at=value["e"],
            status=value["st"],
            user_id=value["u"],
            audience=tuple(value.get("a", ())),
            extra=value.get("x", {}),
        )


@dataclass(frozen=True, slots=True)
class GrantRecord:
    """One grant of a user to a client (``grants:``, a set index per user).

    A code (whose family is the code's hash), a grant that issued tokens (a
    code redeemed, a password or device grant: the family of its tokens and
    refresh chain), or a remembered consent (no family). Kept as set members,
    so grants made at the same time are all kept.

    :param client_id: the client.
    :param family: the family of its tokens; None for a remembered consent.
    :param since: when it was made, Unix time.
    :param until: when its last token (or the consent) ends, Unix time.
    :param scopes: the scopes granted.
    :param code: the family is an authorization code's, which may not be redeemed yet.
    """

    client_id: str
    family: str | None
    since: int
    until: int
    scopes: tuple[str, ...]
    code: bool = False

    def to_member(self) -> str:
        """The set member: compact JSON (``k`` only for a code)."""
        value: dict[str, Any] = {
            "c": self.client_id,
            "f": self.family,
            "t": self.since,
            "e": self.until,
            "s": list(self.scopes),
        }
        if self.code:
            value["k"] = 1
        return json.dumps(value, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_member(cls, member: str) -> GrantRecord:
        """Rebuild a record from :meth:`to_member` output.

        :raises ValueError: the member is not one (a garbled store entry).
        """
        try:
            value = json.loads(member)
            return cls(
                value["c"], value["f"], value["t"], value["e"], tuple(value["s"]), bool(value.get("k"))
            )
        except (KeyError, TypeError) as exc:
            raise ValueError("not a grant record") from exc


@dataclass(frozen=True, slots=True)
class RegistrationRecord:
    """What a dynamic registration (RFC 7591, 7592) adds to its client, kept beside it (``registration:``).

    :param token_hash: the SHA-256 of its registration access token (never the token).
    :param issued_at: its ``client_id_issued_at``, Unix time.
    :param extra: the descriptive metadata it registered (``client_uri``, ``contacts``, ...).
    """

    token_hash: str
    issued_at: int
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_value(self) -> dict[str, Any]:
        """The dict kept in the store."""
        return {"th": self.token_hash, "ia": self.issued_at, "x": dict(self.extra)}

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> RegistrationRecord:
        """Rebuild a record from :meth:`to_value` output."""
        return cls(value["th"], value["ia"], value.get("x", {}))
