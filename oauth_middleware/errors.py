"""One error hierarchy, mapped to the error codes of the OAuth RFCs.

Errors are data: each class only sets ``error``, ``status_code`` and a
description. :mod:`oauth_middleware.responses` is the one place that turns
them into HTTP. Whether an error may be redirected back to the client is
answered by its type (:class:`FatalClientError` never is, RFC 6749
§4.1.2.1), not by a flag passed around.
"""

from __future__ import annotations

import re

#: RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
_DESCRIPTION_CHARS = re.compile(r"^[\x20\x21\x23-\x5b\x5d-\x7e]*$")


def describable(text: str, limit: int = 300) -> str:
    """``text`` made fit for an ``error_description``: characters RFC 6749 §5.2 forbids become ``?``, cut at ``limit``.

    For messages that may quote what a client sent (a metadata document's reason for refusal).
    """
    return re.sub(r"[^\x20\x21\x23-\x5b\x5d-\x7e]", "?", text)[:limit]


class ConfigError(ValueError):
    """A setting is missing, unknown or has a bad value (raised at load time).

    The message is one line that names the setting, e.g.
    ``access_token_ttl: expected a whole number of seconds, got 'soon'``.
    """


class StoreUnavailable(Exception):
    """The token store cannot be reached; callers fail closed with a 503."""


class OAuthError(Exception):
    """Base of every error that becomes an OAuth error response.

    :param description: human-readable ``error_description``; restricted to
        the characters RFC 6749 §5.2 allows, checked here so a bad message
        fails where it is written, not when it is rendered.
    """

    #: The RFC error code sent as ``error``.
    error: str = "invalid_request"
    #: HTTP status used when the error is rendered as a JSON response.
    status_code: int = 400

    def __init__(self, description: str = "") -> None:
        if not _DESCRIPTION_CHARS.match(description):
            raise ValueError(f"error_description has characters RFC 6749 forbids: {description!r}")
        super().__init__(description or self.error)
        self.description = description


class InvalidRequest(OAuthError):
    """Malformed request: missing, repeated or bad parameter (RFC 6749 §5.2)."""

    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed (RFC 6749 §5.2): 401."""

    error = "invalid_client"
    status_code = 401


class InvalidGrant(OAuthError):
    """The grant (code, refresh token, password) is invalid or expired."""

    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    """The client may not use this grant or response type."""

    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    """The server does not offer this ``grant_type``."""

    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    """The server does not offer this ``response_type``."""

    error = "unsupported_response_type"


class UnsupportedTokenType(OAuthError):
    """RFC 7009 §2.2.1: the server cannot revoke this token type."""

    error = "unsupported_token_type"


class InvalidScope(OAuthError):
    """The requested scope is unknown, malformed or beyond what is allowed."""

    error = "invalid_scope"


class InvalidTarget(OAuthError):
    """A ``resource`` that is malformed, unknown or not allowed for the client (RFC 8707 §2)."""

    error = "invalid_target"


class AccessDenied(OAuthError):
    """The resource owner or the server denied the request."""

    error = "access_denied"
    status_code = 403


class AuthorizationPending(OAuthError):
    """RFC 8628 §3.5: the user has not decided yet; poll again after the interval."""

    error = "authorization_pending"


class SlowDown(OAuthError):
    """RFC 8628 §3.5: polled faster than the interval, which is now raised by 5 seconds."""

    error = "slow_down"


class ExpiredToken(OAuthError):
    """RFC 8628 §3.5: the device code expired; the device may start again."""

    error = "expired_token"


class DeviceAccessDenied(OAuthError):
    """RFC 8628 §3.5: the user denied the device's request (a token endpoint error: 400)."""

    error = "access_denied"


class ServerError(OAuthError):
    """Unexpected condition (RFC 6749 §4.1.2.1 ``server_error``)."""

    error = "server_error"
    status_code = 500


class TemporarilyUnavailable(OAuthError):
    """The server cannot handle the request now, e.g. the store is down."""

    error = "temporarily_unavailable"
    status_code = 503


class TooManyRequests(OAuthError):
    """Too many failed authentications from this client, address or user (429, ``Retry-After``).

    RFC 6749 has no code for it. ``invalid_request`` is the token endpoint's
    catch-all (§5.2) that every client understands; the status and
    ``Retry-After`` (RFC 6585 §4) carry "try again later". Not
    ``invalid_client`` or ``invalid_grant``: those would claim the
    credentials were checked (they are not, so a guesser learns nothing), and
    ``slow_down`` (RFC 8628) and ``temporarily_unavailable`` (a server fault,
    authorization endpoint only) mean something else.

    :param retry_after: whole seconds until the block ends.
    :param description: what was too many (failed attempts unless said).
    """

    error = "invalid_request"
    status_code = 429

    def __init__(self, retry_after: int, description: str = "too many failed attempts, retry later") -> None:
        super().__init__(description)
        #: Seconds to wait, sent as ``Retry-After``.
        self.retry_after = retry_after


class PayloadTooLarge(OAuthError):
    """A request body larger than ``max_body_size`` (413); it is never read."""

    error = "invalid_request"
    status_code = 413


class MethodNotAllowed(OAuthError):
    """Wrong HTTP method for one of our endpoints (405, with ``Allow``)."""

    error = "invalid_request"
    status_code = 405

    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__(f"method not allowed, use {' or '.join(allowed)}")
        self.allowed = allowed


class FatalClientError(OAuthError):
    """An authorization request whose client or redirect URI cannot be trusted.

    Never redirected (that would make us an open redirector); rendered as an
    error page instead (RFC 6749 §4.1.2.1).
    """

    error = "invalid_request"


class InvalidRequestUri(FatalClientError):
    """A ``request_uri`` that is unknown, expired, used or another client's (RFC 9126 §4, RFC 9101 §6.2).

    An error page: the redirect URI is in the pushed request we could not use.
    """

    error = "invalid_request_uri"


class UnusableClientDocument(FatalClientError):
    """A client ID metadata document that cannot be fetched or used: an error page naming why.

    The token endpoint never shows it: there the client is just unknown (``invalid_client``).
    """

    error = "invalid_client"


class RedirectedError(OAuthError):
    """An authorization-endpoint error sent back to the client's redirect URI.

    Only raised once the client and its redirect URI are known to be good
    (RFC 6749 §4.1.2.1, §4.2.2.1); until then errors are
    :class:`FatalClientError`.

    :param error: the error to report (its ``error`` and description are used).
    :param redirect_uri: the validated redirect URI.
    :param state: the request's ``state``, echoed back when it was sent.
    :param fragment: put the parameters in the fragment (implicit grant)
        rather than the query.
    :param status: 302 after a GET, 303 after a POST (RFC 9700 §4.12: never 307).
    :param issuer: the ``iss`` the redirect carries (RFC 9207); set by the
        authorization endpoint, which knows it.
    """

    def __init__(
        self,
        error: OAuthError,
        *,
        redirect_uri: str,
        state: str | None,
        fragment: bool = False,
        status: int = 302,
        issuer: str = "",
    ) -> None:
        super().__init__(error.description)
        self.error = error.error
        self.status_code = status
        self.redirect_uri = redirect_uri
        self.state = state
        self.fragment = fragment
        self.issuer = issuer


class InvalidRedirectUri(OAuthError):
    """RFC 7591 §3.2.2: a registration's redirect URI is malformed or not allowed here."""

    error = "invalid_redirect_uri"


class InvalidClientMetadata(OAuthError):
    """RFC 7591 §3.2.2: a registration's (or a metadata document's) client metadata is refused."""

    error = "invalid_client_metadata"


class UnapprovedSoftwareStatement(OAuthError):
    """RFC 7591 §3.2.2: a software statement, none of which this server approves."""

    error = "unapproved_software_statement"


class BearerError(OAuthError):
    """Base of the resource-server errors of RFC 6750 §3.1."""


class MissingToken(BearerError):
    """No token on a protected path: a bare challenge, no error code (§3.1)."""

    error = ""
    status_code = 401


class InvalidToken(BearerError):
    """Unknown, expired, revoked or malformed access token (401)."""

    error = "invalid_token"
    status_code = 401


class InsufficientScope(BearerError):
    """The token lacks a scope the path needs (403, with ``scope``)."""

    error = "insufficient_scope"
    status_code = 403

    def __init__(
        self, required: tuple[str, ...], description: str = "the token lacks a required scope"
    ) -> None:
        super().__init__(description)
        #: The scopes the request needs, sent back in the challenge (none when no scope would do).
        self.required = required


class InvalidBearerRequest(BearerError):
    """Malformed request to a protected path, e.g. two token sources (400)."""

    error = "invalid_request"
    status_code = 400


class BearerUnavailable(BearerError):
    """The store behind the guard is down: fail closed (503)."""

    error = "temporarily_unavailable"
    status_code = 503


class GuardFailure(BearerError):
    """An unexpected error while the guard checked a request: it fails closed (500, no details).

    Never caused by what a client sends; the traceback is logged, never sent.
    """

    error = "server_error"
    status_code = 500


class InvalidDPoPProof(OAuthError):
    """A missing, malformed, replayed or mismatched DPoP proof (RFC 9449 §5, §7.1): 400 at the token endpoint."""

    error = "invalid_dpop_proof"


class UseDPoPNonce(InvalidDPoPProof):
    """The DPoP proof must carry the server's nonce (RFC 9449 §8): sent with a ``DPoP-Nonce`` header.

    :param nonce: the nonce to use, sent as ``DPoP-Nonce``.
    """

    error = "use_dpop_nonce"

    def __init__(self, nonce: str, description: str = "") -> None:
        super().__init__(description)
        #: The current server nonce.
        self.nonce = nonce


class DPoPGuardError(BearerError):
    """A DPoP proof refused by the guard (RFC 9449 §7.1): 401 with a ``DPoP`` challenge.

    :param cause: the proof's error (``invalid_dpop_proof`` or ``use_dpop_nonce``).
    """

    status_code = 401

    def __init__(self, cause: InvalidDPoPProof) -> None:
        super().__init__(cause.description)
        self.error = cause.error
        #: The ``DPoP-Nonce`` to send, for ``use_dpop_nonce``.
        self.nonce = cause.nonce if isinstance(cause, UseDPoPNonce) else None
