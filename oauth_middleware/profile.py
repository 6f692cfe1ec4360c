"""Security profiles: the ``profile`` setting makes the server keep to a published profile.

``profile = fapi2`` is the FAPI 2.0 Security Profile (Final, February 2025)
for an authorization server that sender-constrains tokens with DPoP (mutual
TLS, the profile's other choice, is not offered by this server). A profile is
three things, all in this module:

* :data:`DEFAULTS`: the values it gives the settings an ini leaves out
  (``code_ttl = 60``, ``token_types = DPoP``, ...), merged in by
  :meth:`~oauth_middleware.settings.Settings.from_config`;
* :func:`check_profile`: refuses at load time, in one line naming the key and
  the clause, a setting that contradicts it;
* :class:`Profile`: the per-request restrictions the wiring
  (:mod:`oauth_middleware.server`) hands to the parts that enforce them:
  which client authentication methods and assertion algorithms pass, whether
  an assertion's ``aud`` must be a string, whether a pushed request must name
  its ``redirect_uri``, whether a client's ``jwks_uri`` must be https.

Everything else the profile asks for is already what the server does
(``iss`` in authorization responses, single-use codes, exact redirect URIs):
see the README's *FAPI 2.0 Security Profile* section, clause by clause.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from .models import Client
    from .settings import Role, Settings

__all__ = ["DEFAULTS", "PROFILES", "Profile", "check_profile"]

#: FAPI 2.0 §5.4.1 item 1.2: the only JWS algorithms a FAPI party creates or accepts.
FAPI2_ALGORITHMS = ("PS256", "ES256", "EdDSA")


@dataclass(frozen=True)
class Profile:
    """What a profile restricts on each request; ``None`` restricts nothing.

    :param name: the ``profile`` setting's value.
    :param auth_methods: the only client authentication methods that pass.
    :param algorithms: the only JWS algorithms client assertions may use.
    :param audience_string_only: a client assertion's ``aud`` must be a string, not an array.
    :param par_requires_redirect_uri: a pushed authorization request must name its ``redirect_uri``.
    :param https_jwks_uri: a client's ``jwks_uri`` must be https, even on a loopback host.
    """

    name: str
    auth_methods: tuple[str, ...] | None = None
    algorithms: tuple[str, ...] | None = None
    audience_string_only: bool = False
    par_requires_redirect_uri: bool = False
    https_jwks_uri: bool = False

    def narrow(self, names: Iterable[str], allowed: tuple[str, ...] | None) -> list[str]:
        """``names`` in their order, without those ``allowed`` leaves out."""
        return [name for name in names if allowed is None or name in allowed]

    def methods(self, names: Iterable[str]) -> list[str]:
        """The client authentication methods of ``names`` this profile lets through."""
        return self.narrow(names, self.auth_methods)

    def signing_algorithms(self, names: Iterable[str]) -> list[str]:
        """The assertion algorithms of ``names`` this profile lets through."""
        return self.narrow(names, self.algorithms)

    def check_client(self, client: Client, where: str) -> None:
        """Refuse to register a client the profile would refuse on every request.

        :raises ConfigError: naming ``where`` (``clients_file: [client:ID]``, ``client add``):
            an authentication method the profile never accepts, or a plain-http ``jwks_uri``.
        """
        method = client.token_endpoint_auth_method or ""
        if self.auth_methods is not None and method not in self.auth_methods:
            raise ConfigError(
                f"{where} token_endpoint_auth_method {method} contradicts profile = {self.name} "
                f"(only {', '.join(self.auth_methods)})"
            )
        if self.https_jwks_uri and client.jwks_uri is not None and not client.jwks_uri.startswith("https://"):
            raise ConfigError(f"{where} jwks_uri must be https with profile = {self.name}")


#: Each profile by its ``profile`` setting value.
PROFILES = {
    "none": Profile("none"),
    "fapi2": Profile(
        "fapi2",
        # §5.3.2.1 items 3 and 6: confidential clients only, private_key_jwt (mTLS is not offered here).
        auth_methods=("private_key_jwt",),
        algorithms=FAPI2_ALGORITHMS,
        # §5.3.2.1 item 8: the issuer identifier "as a string" in aud.
        audience_string_only=True,
        # §5.3.2.2 item 6.
        par_requires_redirect_uri=True,
        # §5.2.1 item 1: connections to other servers over TLS (no loopback exception).
        https_jwks_uri=True,
    ),
}

#: The values each profile gives the settings an ini leaves out (ini strings).
DEFAULTS: dict[str, dict[str, str]] = {
    "none": {},
    "fapi2": {
        "token_types": "DPoP",
        "require_pushed_authorization_requests": "true",
        "code_ttl": "60",
        "rotate_refresh_tokens": "false",
        "dpop_signing_algs": " ".join(FAPI2_ALGORITHMS),
        "jwt_algorithm": "ES256",
    },
}


def check_profile(settings: Settings, role: Role) -> None:
    """Refuse settings that contradict the ``profile``, for the filter being built.

    :param role: ``oauth2`` checks everything; ``guard`` what a guard reads (its token types).
    :raises ConfigError: the first contradiction, naming the key and the clause.
    """
    if settings.profile != "fapi2":
        return
    checks = _fapi2_contradictions(settings)
    if role == "oauth2":
        checks += _fapi2_server_contradictions(settings)
    for key, broken, clause in checks:
        if broken:
            raise ConfigError(f"{key}: contradicts profile = fapi2 (FAPI 2.0 {clause})")


def _fapi2_contradictions(settings: Settings) -> list[tuple[str, bool, str]]:
    """(key, whether its value contradicts FAPI 2.0, the clause) for what every filter reads."""
    return [
        (
            "token_types",
            settings.token_types != ("DPoP",),
            "§5.3.2.1 items 4-5, §5.3.4 item 5: DPoP-bound tokens only, token_types = DPoP",
        ),
        (
            "jwt_leeway",
            not 10 <= settings.jwt_leeway <= 60,
            "§5.3.2.1 item 13: accept iat and nbf up to 10 s ahead, refuse more than 60 s",
        ),
        ("token_from_query", settings.token_from_query, "§5.3.4 item 2: no access tokens in the query"),
    ]


def _fapi2_server_contradictions(settings: Settings) -> list[tuple[str, bool, str]]:
    """(key, whether its value contradicts FAPI 2.0, the clause) for the authorization server."""
    https = settings.issuer.startswith("https://")
    return [
        ("require_https", not settings.require_https, "§5.2.1 item 1: TLS-protected endpoints only"),
        ("issuer", not https, "§5.2.1 item 1: TLS-protected endpoints only, an https issuer"),
        ("grants", "password" in settings.grants, "§5.3.2.1 item 2: no resource owner password grant"),
        (
            "response_types",
            settings.response_types not in ((), ("code",)),
            "§5.3.2.2 item 1: response_type code only (no implicit token)",
        ),
        (
            "client_assertion_audience_token_endpoint",
            settings.client_assertion_audience_token_endpoint,
            "§5.3.2.1 item 8: only the issuer identifier as aud",
        ),
        (
            "rotate_refresh_tokens",
            settings.rotate_refresh_tokens and settings.refresh_token_reuse_grace == 0,
            "§5.3.2.1 item 9: no rotation, or a refresh_token_reuse_grace to retry with the old token",
        ),
        ("code_ttl", settings.code_ttl > 60, "§5.3.2.1 item 11: codes live 60 s at most"),
        (
            "require_pushed_authorization_requests",
            not settings.require_pushed_authorization_requests,
            "§5.3.2.2 item 3: authorization requests only through PAR",
        ),
        ("require_pkce", not settings.require_pkce, "§5.3.2.2 item 5: PKCE required"),
        ("allow_plain_pkce", settings.allow_plain_pkce, "§5.3.2.2 item 5: PKCE with S256 only"),
        ("par_ttl", settings.par_ttl >= 600, "§5.3.2.2 item 12: request_uri expires_in under 600 s"),
        (
            "dpop_signing_algs",
            not set(settings.dpop_signing_algs) <= set(FAPI2_ALGORITHMS),
            "§5.4.1 item 1.2: PS256, ES256 or EdDSA only",
        ),
        (
            "jwt_algorithm",
            settings.token_format == "jwt" and settings.jwt_algorithm not in FAPI2_ALGORITHMS,
            "§5.4.1 item 1.2: PS256, ES256 or EdDSA only",
        ),
    ]
