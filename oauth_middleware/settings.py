"""Strict converters and the one frozen settings object, built once at load.

Each setting is a dataclass field whose metadata holds its converter and its
documentation; the README's configuration reference is generated from the
same fields (``python -m oauth_middleware.settings``). Strings never reach
the request path: everything is converted here, and a bad value is one
:class:`~oauth_middleware.errors.ConfigError` line naming the key.
"""

from __future__ import annotations

import configparser
import dataclasses
import importlib
import ipaddress
import logging
import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from .errors import ConfigError, OAuthError
from .parsing import scope_list
from .profile import DEFAULTS as PROFILE_DEFAULTS
from .profile import PROFILES, check_profile
from .proxies import TrustedProxies
from .resource_indicators import resource_uri, resource_uris
from .secret_hash import is_secret_hash

log = logging.getLogger("oauth_middleware")

#: The filters a :class:`Settings` object configures, named like their PasteDeploy
#: entry points: ``oauth2`` (authorization server and guard) and ``guard`` (the
#: guard alone, on a resource server). See :meth:`Settings.check_role`.
Role = Literal["oauth2", "guard"]

#: The JWT bearer grant (RFC 7523 §2.1), which needs ``trusted_issuers_file``.
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def read_ini_file(path: str, setting: str) -> configparser.ConfigParser:
    """The sections of an ini file a setting names (``clients_file``, ``trusted_issuers_file``).

    :raises ConfigError: naming ``setting`` and the file: unreadable, not UTF-8, or not an ini file.
    """
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"{setting}: cannot read {path!r}: {exc}".replace("\n", " ")) from None
    return parser


def asbool(value: str) -> bool:
    """``true/yes/on/1`` or ``false/no/off/0``; anything else is an error.

    A typo must never silently switch a security setting off.
    """
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def seconds(value: str) -> int:
    """A positive whole number of seconds."""
    text = value.strip()
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"expected a whole number of seconds above 0, got {value!r}")
    return int(text)


def positive_float(value: str) -> float:
    """A positive number (timeouts)."""
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"expected a number, got {value!r}") from None
    if not number > 0 or number == float("inf"):
        raise ValueError(f"expected a number above 0, got {value!r}")
    return number


def non_negative_float(value: str) -> float:
    """A number of seconds, 0 or more (0 turns something off)."""
    try:
        if float(value) == 0:
            return 0.0
    except ValueError:
        pass  # positive_float says what is wrong
    return positive_float(value)


def aslist(value: str) -> tuple[str, ...]:
    """Words separated by spaces, commas or new lines."""
    return tuple(word for word in re.split(r"[\s,]+", value) if word)


#: The algorithms a DPoP proof may be signed with: asymmetric only (RFC 9449 §4.3, never ``none`` or HMAC).
DPOP_ALGS = ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA")


def dpop_algs(value: str) -> tuple[str, ...]:
    """Asymmetric JWS algorithms (:data:`DPOP_ALGS`), at least one."""
    algs = aslist(value)
    wrong = [alg for alg in algs if alg not in DPOP_ALGS]
    if wrong or not algs:
        raise ValueError(f"expected asymmetric algorithms among {' '.join(DPOP_ALGS)}, got {value!r}")
    return algs


def text(value: str) -> str:
    """A string, stripped."""
    return value.strip()


def scope_tokens(value: str) -> tuple[str, ...]:
    """A list of scope tokens (RFC 6749 §3.3 characters)."""
    try:
        return scope_list(" ".join(aslist(value)))
    except OAuthError:
        raise ValueError(f"not a valid scope list: {value!r}") from None


def url_path(value: str) -> str:
    """An absolute URL path such as ``/oauth/token``."""
    text_value = value.strip()
    if not text_value.startswith("/") or any(ch.isspace() for ch in text_value):
        raise ValueError(f"expected a path starting with '/', got {value!r}")
    return text_value


def optional_url_path(value: str) -> str:
    """An absolute URL path, or empty (the endpoint is off)."""
    return url_path(value) if value.strip() else ""


def http_url(value: str) -> str:
    """An http(s) URL without a query or fragment, or empty."""
    text_value = value.strip().rstrip("/")
    if text_value and not re.fullmatch(r"https?://[^\s?#]+", text_value):
        raise ValueError(f"expected an http(s) URL without query or fragment, got {value!r}")
    return text_value


def fetch_url(value: str) -> str:
    """An http(s) URL to fetch from (a query is allowed), without user info or fragment, or empty.

    User info is refused so that no password sits in a URL we log.
    """
    text_value = value.strip()
    if text_value and not re.fullmatch(r"https?://[^\s/?#@]+(/[^\s#]*)?", text_value):
        raise ValueError(f"expected an http(s) URL without user info or fragment, got {value!r}")
    return text_value


def resource_identifier(value: str) -> str:
    """An http(s) URL with a host and without a fragment (RFC 8707 §2, RFC 9728 §1.2), as written, or empty."""
    text_value = fetch_url(value)  # its metadata is fetched from a URL built from it
    return resource_uri(text_value) if text_value else ""


def resource_list(value: str) -> tuple[str, ...]:
    """Absolute URIs without fragments (RFC 8707 §2), separated by white space."""
    return resource_uris(aslist(value))


def choice(*options: str) -> Callable[[str], str]:
    """A converter accepting exactly one of ``options``."""

    def convert(value: str) -> str:
        text_value = value.strip()
        if text_value not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {value!r}")
        return text_value

    convert.__doc__ = f"One of: {', '.join(options)}."
    return convert


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """A converter accepting a whole number from ``low`` to ``high``."""

    def convert(value: str) -> int:
        text_value = value.strip()
        if not text_value.isdigit() or not low <= int(text_value) <= high:
            raise ValueError(f"expected a whole number from {low} to {high}, got {value!r}")
        return int(text_value)

    convert.__doc__ = f"A whole number from {low} to {high}."
    return convert


#: Claims a JWT access token sets itself (RFC 9068 §2.2, RFC 9449 §6 ``cnf``, RFC 8693 §4.1
#: ``act``) and the members introspection sets (RFC 7662 §2.2), so never the extra-data claim,
#: which appears in both.
RESERVED_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "scope", "auth_time", "acr", "amr", "act"}
    | {"cnf", "active", "token_type", "username"}
)


def claim_name(value: str) -> str:
    """A JWT claim name (a URI for a collision-resistant one) other than the claims the token sets itself."""
    text_value = value.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.:/#-]{1,200}", text_value) or text_value in RESERVED_CLAIMS:
        raise ValueError(
            f"expected a claim name other than {', '.join(sorted(RESERVED_CLAIMS))}, got {value!r}"
        )
    return text_value


def dotted_callable(value: str) -> Callable[..., Any] | None:
    """``package.module:function``, imported at load time; empty means none."""
    text_value = value.strip()
    if not text_value:
        return None
    module_name, sep, attr = text_value.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected package.module:function, got {value!r}")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import {text_value!r}: {exc}") from None
    if not callable(target):
        raise ValueError(f"{text_value!r} is not callable")
    return target  # type: ignore[no-any-return]


def endpoint_list(value: str) -> tuple[str, ...]:
    """Endpoint names, each alone or as ``name=/path``, separated by spaces, commas or new lines."""
    words = []
    for word in aslist(value):
        name, sep, path = word.partition("=")
        if not name:
            raise ValueError(f"expected NAME or NAME=/PATH, got {word!r}")
        words.append(f"{name}={url_path(path)}" if sep else name)
    return tuple(words)


def login_location(value: str) -> str:
    """An absolute path or an http(s) URL, or empty."""
    text_value = value.strip()
    # Printable ASCII without "#" only: the value goes into a Location header.
    if text_value and not re.fullmatch(r"(/|https?://)[\x21\x22\x24-\x7e]*", text_value):
        raise ValueError(f"expected a path starting with '/' or an http(s) URL, got {value!r}")
    return text_value


def key_text(value: str) -> str:
    """A secret key of at least 32 characters, or empty."""
    text_value = value.strip()
    if text_value and len(text_value) < 32:
        raise ValueError("expected at least 32 characters, e.g. from secrets.token_urlsafe(32)")
    return text_value


def trusted_proxy_list(value: str) -> TrustedProxies:
    """IP addresses and CIDR networks (``10.0.0.0/8 ::1``) and the keyword ``unix``, by spaces or commas."""
    words = aslist(value)
    networks = []
    for word in words:
        if word == "unix":
            continue
        try:
            network = ipaddress.ip_network(word)
        except ValueError as exc:
            raise ValueError(f"expected an IP address or network, or unix, got {word!r} ({exc})") from None
        if network.prefixlen == 0:
            # Trusting every address would let anyone write X-Forwarded-For.
            raise ValueError(f"{word!r} trusts every address; name your proxies")
        networks.append(network)
    return TrustedProxies(tuple(networks), unix="unix" in words)


def network_list(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """IP addresses and CIDR networks (``127.0.0.0/8 ::1``), separated by spaces or commas."""
    networks = []
    for word in aslist(value):
        try:
            network = ipaddress.ip_network(word)
        except ValueError as exc:
            raise ValueError(f"expected an IP address or network, got {word!r} ({exc})") from None
        if network.prefixlen == 0:
            raise ValueError(f"{word!r} names every address; name the networks")
        networks.append(network)
    return tuple(networks)


def secret_hashes(value: str) -> tuple[str, ...]:
    """Hashes of secrets as ``oauth-middleware client hash`` prints them, separated by spaces or commas."""
    hashes = aslist(value)
    for item in hashes:
        if not is_secret_hash(item):
            raise ValueError(
                "expected hashes as 'oauth-middleware client hash' prints them "
                "(64 hex digits, or pbkdf2_sha256$ITERATIONS$SALT$HASH)"
            )
    return hashes


def cookie_name(value: str) -> str:
    """A cookie name: letters, digits, ``_`` and ``-``."""
    text_value = value.strip()
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", text_value):
        raise ValueError(f"expected letters, digits, '_' or '-', got {value!r}")
    return text_value


def html_template(*names: str, prefixes: tuple[str, ...] = ()) -> Callable[[str], str]:
    """A converter reading a :class:`string.Template` HTML file, or empty for the built-in one.

    The file must use only the placeholders ``names`` (or ones starting with
    one of ``prefixes``) and must contain ``$hidden_fields`` (the form cannot
    work without it).
    """

    def convert(value: str) -> str:
        path = value.strip()
        if not path:
            return ""
        try:
            with open(path, encoding="utf-8") as handle:
                source = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read {path!r}: {exc}") from None
        used = {m.group("named") or m.group("braced") for m in string.Template.pattern.finditer(source)}
        unknown = sorted(name for name in used - set(names) if name and not name.startswith(prefixes))
        if unknown:
            raise ValueError(f"{path!r} uses unknown placeholder ${unknown[0]} (known: {', '.join(names)})")
        if "hidden_fields" not in used:
            raise ValueError(f"{path!r} must put $hidden_fields inside its form")
        return source

    convert.__doc__ = f"An HTML template file using: {', '.join(names)}."
    return convert


#: Placeholders of the login and consent page templates (values arrive HTML-escaped).
LOGIN_PLACEHOLDERS = ("action_url", "hidden_fields", "client_name", "client_id", "error", "username")
#: What a replacement of the user-code page (RFC 8628 §3.3) must use.
DEVICE_PLACEHOLDERS = ("action_url", "error", "user_code")
CONSENT_PLACEHOLDERS = (
    "action_url",
    "hidden_fields",
    "client_name",
    "client_id",
    "scope_items",
    "user",
    "redirect_host",
)


class PathMatcher(NamedTuple):
    """Exact paths and prefixes (written with a trailing ``*``)."""

    exact: frozenset[str]
    prefixes: tuple[str, ...]

    def matches(self, path: str) -> bool:
        """True when ``path`` is one of the exact paths or starts with a prefix."""
        return path in self.exact or (bool(self.prefixes) and path.startswith(self.prefixes))


def path_patterns(value: str) -> PathMatcher:
    """Paths separated by spaces; ``/static/*`` matches everything under it."""
    exact: set[str] = set()
    prefixes: list[str] = []
    for word in aslist(value):
        pattern = url_path(word)
        if pattern.endswith("*"):
            prefixes.append(pattern[:-1])
        else:
            exact.add(pattern)
    return PathMatcher(frozenset(exact), tuple(prefixes))


class ScopeRule(NamedTuple):
    """Scopes a request needs when its method and path match."""

    methods: frozenset[str] | None
    paths: PathMatcher
    scopes: tuple[str, ...]


def parse_scope_rules(value: str) -> tuple[ScopeRule, ...]:
    """One rule per line: ``METHODS PATH SCOPE...``; the first match wins.

    ``METHODS`` is ``*`` or a comma list (``GET,HEAD``; ``GET`` covers
    ``HEAD`` too); ``PATH`` is exact or ends with ``*``. Example:
    ``POST,PUT,DELETE /api/* write``.
    """
    rules = []
    for line in value.splitlines():
        words = line.split()
        if not words:
            continue
        if len(words) < 3:
            raise ValueError(f"expected 'METHODS PATH SCOPE...', got {line.strip()!r}")
        methods_word, path_word, *scope_words = words
        methods = None if methods_word == "*" else frozenset(m.upper() for m in methods_word.split(","))
        if methods is not None and "GET" in methods:
            methods |= {"HEAD"}  # a HEAD is a GET without the body (RFC 9110 §9.3.2)
        rules.append(ScopeRule(methods, path_patterns(path_word), scope_tokens(" ".join(scope_words))))
    return tuple(rules)


def header_text(value: str) -> str:
    """A string that goes into an HTTP header as a quoted-string: printable ASCII, no ``"`` or ``\\``.

    Refused at load rather than escaped on every response: a quote or a line
    break in a realm is a mistake (``realm = "api"`` keeps its quotes).
    """
    text_value = value.strip()
    if not re.fullmatch(r"[\x20\x21\x23-\x5b\x5d-\x7e]*", text_value):
        raise ValueError(
            f"expected printable ASCII without quotes, backslashes or line breaks, got {text_value!r}"
        )
    return text_value


def _setting(default: str, convert: Callable[[str], Any], doc: str, *, secret: bool = False) -> Any:
    """Declare a setting: its ini default (as written in an ini), converter and doc.

    ``secret=True`` keeps the value out of ``repr()``, hence out of logs and tracebacks.
    """
    return field(
        default=convert(default),
        repr=not secret,
        metadata={"ini": default, "convert": convert, "doc": doc},
    )


@dataclass(frozen=True)
class Settings:
    """Every option of the middleware, converted and checked.

    Build it with :meth:`from_config`; the middleware keeps one instance for
    its whole life.

    >>> Settings.from_config({"store": "memory://", "access_token_ttl": "600"}).access_token_ttl
    600
    """

    # -- storage ---------------------------------------------------------
    store: str = _setting(
        "sqlite:///oauth.db",
        text,
        "Where clients and tokens live: ``memory://``, ``sqlite:///path.db`` "
        "(relative to the working directory; four slashes for an absolute path), "
        "``redis://host:6379/0`` (also ``rediss://`` and ``redis+sentinel://``) or "
        "``memcache://host:11211[,host2:11211...]``; see *Scaling out: Redis and memcached*; "
        "``postgresql://user:password@host:5432/database`` or ``mysql://user:password@host:3306/database``; "
        "see *Scaling out: PostgreSQL and MySQL*.",
    )
    client_store: str = _setting(
        "",
        text,
        "A second store for clients only (the ``oauth-middleware client`` commands write there "
        "too), e.g. ``sqlite:///clients.db`` when ``store`` is a memcached that may evict or "
        "lose entries. Same URL forms as ``store``. Empty: clients live in ``store``.",
    )
    store_timeout: float = _setting(
        "2.0", positive_float, "Seconds before a store call gives up (the guard then answers 503)."
    )
    store_prefix: str = _setting("oauth2:", text, "Prefix of every key in a shared Redis or memcached.")
    store_table_prefix: str = _setting(
        "oauth_",
        text,
        "Prefix of the table names in PostgreSQL and MySQL (letters, digits and ``_``), optionally "
        "after a schema (MySQL: database) name and a dot, e.g. ``auth.oauth_``, so the tables can "
        "live in an application's existing database. See *Scaling out: PostgreSQL and MySQL*.",
    )
    store_pool_size: int = _setting(
        "10",
        whole_number(1, 1000),
        "Most connections each process opens to PostgreSQL or MySQL; a call waiting longer than "
        "``store_timeout`` for a free one answers 503.",
    )
    clients_file: str = _setting(
        "",
        text,
        "An ini file of ``[client:ID]`` sections loaded into the store at start-up "
        "(see *Clients as code*). Empty: none.",
    )

    trusted_issuers_file: str = _setting(
        "",
        text,
        "An ini file of ``[issuer:ISSUER]`` sections: the servers whose signed JWTs the JWT bearer "
        "grant and token exchange accept (see *The JWT bearer grant*). Read at start-up. Empty: none.",
    )

    # -- issuing -----------------------------------------------------------
    issuer: str = _setting(
        "",
        http_url,
        "This server's issuer URL (RFC 8414), e.g. ``https://auth.example.com``: the ``issuer`` of "
        "the metadata and the base of its endpoint URLs, the ``iss`` of JWTs and of introspection. "
        "Required by the ``oauth2`` filter (never taken from a request's ``Host``, which a client "
        "chooses); a guard needs it only with ``token_format = jwt``.",
    )
    metadata_max_age: int = _setting(
        "3600",
        seconds,
        "Seconds clients and caches may keep the server metadata document "
        "(``Cache-Control: public, max-age=N``).",
    )
    token_format: str = _setting("opaque", choice("opaque", "jwt"), "Access tokens: ``opaque`` or ``jwt``.")
    token_generator: str = _setting(
        "secrets",
        choice("secrets", "uuid4"),
        "How opaque tokens are made: ``secrets`` (256 random bits) or ``uuid4`` "
        "(122 random bits, for migrations from older libraries).",
    )
    grants: tuple[str, ...] = _setting(
        "authorization_code refresh_token client_credentials",
        aslist,
        "The grant types the token endpoint accepts: ``authorization_code``, ``refresh_token``, "
        "``client_credentials``, ``password`` (resource owner password credentials: off by "
        "default, it needs ``verify_password``), ``urn:ietf:params:oauth:grant-type:device_code`` "
        "(RFC 8628, off by default: it also serves ``device_authorization_path`` and "
        "``device_verification_path``), ``urn:ietf:params:oauth:grant-type:jwt-bearer`` (RFC 7523, "
        "off by default: it needs ``trusted_issuers_file``), "
        "``urn:ietf:params:oauth:grant-type:token-exchange`` (RFC 8693, off by default) and those "
        "registered by plug-ins (see *Extending*). Checked when the authorization server starts.",
    )
    scopes: tuple[str, ...] = _setting(
        "",
        scope_tokens,
        "Every scope this server offers. A scope outside it is ``invalid_scope`` at every endpoint "
        "(authorization, token for every grant, refresh), whatever a client's registration says; "
        "``client add`` and ``clients_file`` refuse to register one. Empty: no server-wide list, "
        "the clients' registrations are the only limit.",
    )
    default_scope: tuple[str, ...] = _setting(
        "",
        scope_tokens,
        "Scope granted when a request names none, and the only scope a client registered without "
        "scopes may have (least privilege, RFC 9700 §2.3). Empty: a request naming no scope gets "
        "the client's registered scopes, and a client registered without scopes gets no scope.",
    )
    access_token_ttl: int = _setting("3600", seconds, "Lifetime of an access token, in seconds.")

    # -- authorization endpoint (RFC 6749 §3.1, §4.1, §4.2) -------------------
    response_types: tuple[str, ...] = _setting(
        "code",
        aslist,
        "Response types the authorization endpoint offers: ``code`` (with the "
        "``authorization_code`` grant enabled) and ``token``, the implicit grant, off by default "
        "because RFC 9700 advises against it; a plug-in grant may serve others. A client needs "
        "the type in its registration too.",
    )
    code_ttl: int = _setting(
        "600", seconds, "Lifetime of an authorization code, in seconds; codes are single use."
    )
    device_code_ttl: int = _setting(
        "600",
        whole_number(60, 1800),
        "Lifetime of a device code and its user code (RFC 8628 §3.2 ``expires_in``), in seconds. "
        "The user code's entropy is weighed against it and the guessing limits (see SECURITY.rst).",
    )
    device_poll_interval: int = _setting(
        "5",
        whole_number(1, 60),
        "Seconds a device waits between two polls of the token endpoint (RFC 8628 §3.2 "
        "``interval``); a faster poll is ``slow_down`` and adds 5 s to the device code's interval.",
    )
    device_user_code_max_failures: int = _setting(
        "1000",
        whole_number(1, 1_000_000),
        "Wrong user codes allowed from all addresses together within ``throttle_window`` before "
        "the user-code page refuses every entry until the window ends (RFC 8628 §5.1); each "
        "address also counts against ``throttle_max_failures``.",
    )
    par_ttl: int = _setting(
        "60",
        whole_number(5, 600),
        "Lifetime of a pushed authorization request's ``request_uri`` (RFC 9126 §2.2, which "
        "suggests 5 to 600 seconds), in seconds. It is used once, and must be used within this "
        "time of the push by the user's decision (login included): raise it if users log in slowly.",
    )
    require_pushed_authorization_requests: bool = _setting(
        "false",
        asbool,
        "Accept authorization requests only through the pushed authorization request endpoint "
        "(RFC 9126 §5), from every client; a client's own ``require_pushed_authorization_requests`` "
        "asks it of that client alone. A plain request is then sent back to the client as "
        "``invalid_request``.",
    )
    require_pkce: bool = _setting(
        "true",
        asbool,
        "Require PKCE (RFC 7636) from confidential clients too. Public clients always need it.",
    )
    allow_plain_pkce: bool = _setting(
        "false", asbool, "Accept ``code_challenge_method=plain``. Off: only ``S256`` is accepted."
    )
    remember_consent: bool = _setting(
        "false",
        asbool,
        "Remember a user's approval per client and scope set, so a returning user asking for "
        "the same or fewer scopes is not asked again. Confidential clients only: a public "
        "client (native or browser app, whose id anyone can send) is asked every time "
        "(RFC 8252 §8.6).",
    )
    consent_ttl: int = _setting("2592000", seconds, "How long a remembered approval lasts, in seconds.")
    consent_template: str = _setting(
        "",
        html_template(*CONSENT_PLACEHOLDERS, prefixes=("meta_",)),
        "An HTML file replacing the built-in consent page: a ``string.Template`` using "
        f"{', '.join('``$' + n + '``' for n in CONSENT_PLACEHOLDERS)} and ``$meta_NAME`` (the client's "
        "attribute NAME, empty when it has none); it must submit a POST form "
        "to ``$action_url`` holding ``$hidden_fields`` and a button ``name=decision`` with value "
        "``approve`` or ``deny``. Empty: the built-in page.",
    )
    login_template: str = _setting(
        "",
        html_template(*LOGIN_PLACEHOLDERS),
        "An HTML file replacing the built-in login page: a ``string.Template`` using "
        f"{', '.join('``$' + n + '``' for n in LOGIN_PLACEHOLDERS)}; it must POST "
        "``$hidden_fields``, ``username`` and ``password`` to ``$action_url``. Empty: the built-in page.",
    )
    device_template: str = _setting(
        "",
        html_template(*DEVICE_PLACEHOLDERS),
        "An HTML file replacing the built-in user-code page of the device grant: a "
        f"``string.Template`` using {', '.join('``$' + n + '``' for n in DEVICE_PLACEHOLDERS)}; "
        "it must GET ``user_code`` from ``$action_url``. Empty: the built-in page.",
    )

    # -- users ---------------------------------------------------------------
    authenticate_user: Callable[..., Any] | None = _setting(
        "",
        dotted_callable,
        "``package.module:function`` given the WebOb request, returning the logged-in user's id "
        "or None. Asked when no upstream component set ``REMOTE_USER``. Empty: only "
        "``REMOTE_USER`` and the built-in login page's session.",
    )
    verify_password: Callable[..., Any] | None = _setting(
        "",
        dotted_callable,
        "``package.module:function(username, password)`` returning the user's id, or None when "
        "the password is wrong. Used by the built-in login page and the password grant. "
        "``oauth_middleware.demo:verify_password`` checks the demo app's ``users``.",
    )
    token_exchange_policy: Callable[..., Any] | None = _setting(
        "",
        dotted_callable,
        "``package.module:function`` deciding who may exchange what (RFC 8693): called with a "
        "``TokenExchange`` (the client, the verified subject and actor tokens, the scopes and "
        "audience asked for), it returns True to allow; False is ``invalid_request``. Empty: the "
        "built-in least-privilege policy (see *Token exchange*).",
    )
    token_claims: Callable[..., Any] | None = _setting(
        "",
        dotted_callable,
        "``package.module:function(client, user_id, grant_type, scopes, data)`` returning a dict "
        "of data to add to the tokens of a new grant (or None), over the ``data`` the user hooks "
        "returned; see *Data on tokens*. Empty: the tokens carry the user hooks' data only.",
    )
    token_data_max_bytes: int = _setting(
        "1024",
        whole_number(0, 2048),
        "Largest data a token may carry, in bytes of compact JSON; larger (or non-JSON) data from "
        "a hook is dropped with a warning in the log, and the grant goes on without it. 0: "
        "tokens carry no data.",
    )
    login_url: str = _setting(
        "",
        login_location,
        "Where to send a user who is not logged in; the authorization URL to come back to is "
        "added as ``next``. Empty: the built-in login page (it needs ``verify_password``).",
    )
    session_secret: str = _setting(
        "",
        key_text,
        "Key (32 characters or more) signing the login session cookie and the CSRF tokens of "
        "the login and consent forms, and encrypting tokens kept for ``unique_tokens``. Empty: "
        "a random key made at start-up, so sessions end with the process. Deployments with "
        "more than one process (``gunicorn -w 2``) must set it, to the same value everywhere.",
        secret=True,
    )
    session_ttl: int = _setting("3600", seconds, "Lifetime of a built-in login session, in seconds.")
    session_cookie: str = _setting(
        "oauth2_session", cookie_name, "Name of the login session cookie (its path is ``authorize_path``)."
    )

    # -- refresh tokens (RFC 6749 §6) and unique tokens --------------------------
    refresh_token_grants: tuple[str, ...] = _setting(
        "authorization_code password",
        aslist,
        "Grants whose token response carries a refresh token, when the ``refresh_token`` grant "
        "is enabled and the client is registered for it: grants declaring they may "
        "(``authorization_code``, ``password``, plug-ins).",
    )
    refresh_token_ttl: int = _setting(
        "1209600",
        seconds,
        "Longest life of a refresh token, in seconds, counted from the grant that started its "
        "chain (14 days); rotation does not extend it.",
    )
    refresh_token_idle_ttl: int = _setting(
        "0", whole_number(0, 10**9), "A refresh token unused for this many seconds expires. 0: no idle limit."
    )
    rotate_refresh_tokens: bool = _setting(
        "true",
        asbool,
        "Each refresh returns a new refresh token and the old one dies; presenting a rotated "
        "token again revokes every token of its chain (reuse detection, RFC 9700 §4.14).",
    )
    refresh_token_reuse_grace: int = _setting(
        "0",
        whole_number(0, 300),
        "Seconds during which a just-rotated refresh token still works for its client, for "
        "clients that retry after losing a response. 0: none.",
    )
    allowed_resources: tuple[str, ...] = _setting(
        "",
        resource_list,
        "The resources (RFC 8707 absolute URIs) a client may ask a token for with ``resource``; "
        "another is ``invalid_target``. Empty: any absolute URI without a fragment. A client "
        "registered with resources of its own (``--resource``) is limited to those too.",
    )
    unique_tokens: bool = _setting(
        "false",
        asbool,
        "For the same client, user, grant type and scope, return the still-valid access token "
        "instead of minting a new one. The token then belongs to every grant that handed it "
        "out: a replayed code or a reused refresh token of any of them revokes it.",
    )

    # -- JWT access tokens (token_format = jwt) -----------------------------
    audience: tuple[str, ...] = _setting(
        "",
        aslist,
        "The ``aud`` of JWT access tokens: the resource servers' identifiers (RFC 9068 §3). "
        "A guard accepts a token naming any of them. Required with ``token_format = jwt``.",
    )
    jwt_algorithm: str = _setting(
        "RS256",
        choice("HS256", "RS256", "ES256", "EdDSA"),
        "Algorithm of the signing key. Verification keys keep their own algorithm, so an "
        "algorithm can be changed by rotation.",
    )
    jwt_signing_key: str = _setting(
        "",
        text,
        "PEM file of the private key that signs JWTs (RS256, ES256, EdDSA), e.g. one written by "
        "``oauth-middleware keys generate``. Its ``kid`` is its RFC 7638 thumbprint.",
    )
    jwt_verification_keys: tuple[str, ...] = _setting(
        "",
        aslist,
        "PEM files (public or private) of keys that verify but never sign: previous signing keys "
        "during a rotation, or the public keys on a guard-only resource server.",
    )
    jwt_jwks_file: str = _setting(
        "",
        text,
        "A JWKS file (RFC 7517) of keys to verify with; those with a private part (or ``oct`` "
        "secrets) can also sign. Keys without ``kid`` get their RFC 7638 thumbprint.",
    )
    jwt_signing_kid: str = _setting(
        "",
        text,
        "The ``kid`` of the key that signs. Empty: ``jwt_signing_key``, else the first ``jwt_secret`` "
        "(HS256), else the first key of ``jwt_algorithm`` in ``jwt_jwks_file`` that can sign.",
    )
    jwt_secret: tuple[str, ...] = _setting(
        "",
        aslist,
        "HS256 secrets of at least 32 characters: the first signs, the others only verify "
        "(rotation). Never published. Every resource server must know them, so prefer a key pair.",
        secret=True,
    )
    jwt_leeway: int = _setting(
        "10", whole_number(0, 300), "Seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``."
    )
    jwt_extra_claim: str = _setting(
        "ext",
        claim_name,
        "Claim (of JWTs) and member (of introspection answers) that carries the data a grant "
        "attached to the token (see *Data on tokens*); never a claim or member they set themselves.",
    )
    jwt_check_revocation: bool = _setting(
        "true",
        asbool,
        "Make the guard look up every JWT's ``jti`` in the store's deny list, so a revoked JWT "
        "stops working at once: on Redis the answer comes from the guard's token cache (no store "
        "read per request, see ``guard_cache_size``), elsewhere one store read per request. Off: "
        "a revoked JWT keeps working on guards until it expires; the introspection endpoint "
        "always checks. A guard-only resource server that shares no store with the "
        "authorization server (``jwks_url``) sets it to false.",
    )
    jwt_cache_size: int = _setting(
        "1024",
        whole_number(0, 1_000_000),
        "How many verified JWTs the guard remembers (never past their ``exp``) to skip the "
        "signature check. 0 turns the cache off.",
    )
    guard_cache_size: int = _setting(
        "10000",
        whole_number(0, 10_000_000),
        "How many validated tokens a guard process keeps in memory (an opaque token as built "
        "from its record, "
        "a JWT's deny-list answer), keyed by the token's hash, least recently used dropped "
        "first, none past its token's ``exp``. On Redis it is on: every ended token is "
        "published and forgotten by every process at once, and while that channel is down the "
        "cache serves nothing. On SQLite and the memory store it is on: each hit reads the "
        "store's change mark (on SQLite a few bytes of shared memory in the file "
        "``<database>-changes``) and reads the revocation generation when a value was replaced "
        "or removed since. On other stores see ``guard_cache_staleness``. The guard also "
        "remembers as many ``Authorization: Bearer`` headers it verified, answered again "
        "while no token ended. 0 turns both off. See *The guard's token cache*.",
    )
    guard_cache_staleness: float = _setting(
        "0",
        non_negative_float,
        "On a store without a channel (SQLite, PostgreSQL, MySQL, memcached): seconds a guard "
        "process may keep answering from its token cache before it reads the store's revocation "
        "generation (one small read) and forgets everything if a token was ended since; the "
        "longest a revocation made in another process goes unseen. 0: on SQLite the cache reads "
        "the change mark on each hit instead (a revocation elsewhere is seen by the next "
        "request); on the other stores it is off (every request reads the store).",
    )
    jwks_url: str = _setting(
        "",
        fetch_url,
        "Only on a guard-only resource server (``egg:oauth-middleware#guard``): the authorization "
        "server's JWKS, e.g. ``https://auth.example.com/oauth/jwks``, whose public keys verify "
        "tokens next to any key files. Fetched at start-up (if it cannot be, the start fails) and "
        "again when a token names an unknown ``kid``, at most once per ``jwks_refetch_interval``; "
        "while a refetch fails, tokens with an unknown ``kid`` get 503. Empty: key files only.",
    )
    jwks_refetch_interval: int = _setting(
        "60",
        whole_number(1, 86400),
        "Fewest seconds between two fetches of ``jwks_url``, failed ones included, so tokens "
        "with made-up ``kid`` values cannot make the guard hammer the authorization server. A "
        "token signed with a new key may be refused for this long after a refetch.",
    )
    jwks_timeout: float = _setting(
        "5",
        positive_float,
        "Seconds before a fetch of ``jwks_url``, of a client's ``jwks_uri`` or of a client ID metadata "
        "document gives up: one deadline for the whole exchange.",
    )
    client_assertion_max_lifetime: int = _setting(
        "300",
        whole_number(1, 3600),
        "Longest a ``private_key_jwt`` client assertion may be valid, in seconds: its ``exp`` at most "
        "this far from now (and from its ``iat``). Its ``jti`` is kept that long to refuse a replay. "
        "A client's ``jwks_uri`` is fetched with ``jwks_timeout`` and ``jwks_refetch_interval``.",
    )
    client_assertion_audience_token_endpoint: bool = _setting(
        "false",
        asbool,
        "Accept a client assertion whose ``aud`` is the token endpoint URL as well as the ``issuer`` "
        "(older clients). Off: only the issuer identifier, so an assertion made for one endpoint "
        "or server cannot be replayed at another.",
    )

    client_secret_key: str = _setting(
        "",
        key_text,
        "Key (32 characters or more) that encrypts the secrets of ``client_secret_jwt`` clients "
        "in the store (AES-256-GCM, key derived with HKDF-SHA256): the server needs such a secret "
        "itself to check an HMAC, so it cannot keep only a hash. Required (the server and "
        "``client add`` refuse to start without it) once such a client is registered; changing it "
        "makes their secrets unreadable (register them again). Keep it out of the store's backups.",
        secret=True,
    )

    # -- dynamic client registration (RFC 7591, 7592) and client ID metadata documents ----
    registration: str = _setting(
        "off",
        choice("off", "open", "initial-access-token"),
        "Dynamic client registration (RFC 7591) at ``registration_path``, and its management "
        "(RFC 7592) at ``registration_client_path``: ``off``; ``open`` (anyone may register); "
        "``initial-access-token`` (a registration request must carry one of "
        "``initial_access_tokens`` as a Bearer token). While on, every token check also reads "
        "whether the token's client deleted its registration (RFC 7592 §2.3: one more store read). "
        "See *Dynamic client registration*.",
    )
    initial_access_tokens: tuple[str, ...] = _setting(
        "",
        secret_hashes,
        "With ``registration = initial-access-token``: the hashes of the initial access tokens "
        "that may register clients, as ``oauth-middleware client hash`` prints them (the tokens "
        "themselves are never written down here).",
    )
    registration_policy: Callable[..., Any] | None = _setting(
        "",
        dotted_callable,
        "``package.module:function(metadata, request)`` called with the client metadata of every "
        "registration and update (a dict) and the WebOb request, before it is validated: it returns "
        "the metadata to register (the same dict, changed, or another), or None to refuse "
        "(``invalid_client_metadata``); it may raise ``InvalidClientMetadata`` or "
        "``InvalidRedirectUri`` with a description of its own. Empty: no policy.",
    )
    registration_scopes: tuple[str, ...] = _setting(
        "",
        scope_tokens,
        "The scopes a dynamically registered client may register (least privilege); each must be "
        "in ``scopes``. Empty: those of ``scopes``; with both empty, dynamically registered "
        "clients register no scope (they get ``default_scope``).",
    )
    registration_max_per_address: int = _setting(
        "20",
        whole_number(1, 1_000_000),
        "Registration requests accepted from one address (an IPv6 client by its /64) within "
        "``registration_window``; more are 429 with ``Retry-After``.",
    )
    registration_window: int = _setting(
        "3600", seconds, "Seconds over which ``registration_max_per_address`` counts registration requests."
    )
    client_id_metadata_documents: bool = _setting(
        "false",
        asbool,
        "Accept a ``client_id`` that is an https URL as the address of the client's metadata "
        "document (draft-ietf-oauth-client-id-metadata-document), fetched and cached, and "
        "advertise ``client_id_metadata_document_supported``. See *Client ID metadata documents*.",
    )
    client_document_max_age: int = _setting(
        "3600",
        whole_number(60, 86400),
        "Longest a client ID metadata document is kept, in seconds, whatever its "
        "``Cache-Control`` allows; it is kept at least 60 seconds, and a document that "
        "could not be used is asked again after 10.",
    )
    fetch_allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = _setting(
        "",
        network_list,
        "Networks (``127.0.0.0/8 ::1``) a client metadata document or a client's ``jwks_uri`` "
        "may be fetched from although they are special-use (private, loopback, link-local, ...), "
        "which are refused otherwise (server-side request forgery); plain http is allowed to the "
        "loopback addresses among them. For tests and development only. The guard's own "
        "``jwks_url`` is configured by the operator and not limited by address.",
    )

    # -- endpoints ---------------------------------------------------------
    authorize_path: str = _setting("/oauth/authorize", url_path, "Authorization endpoint.")
    token_path: str = _setting("/oauth/token", url_path, "Token endpoint.")
    revoke_path: str = _setting("/oauth/revoke", url_path, "Revocation endpoint (RFC 7009).")
    introspect_path: str = _setting("/oauth/introspect", url_path, "Introspection endpoint (RFC 7662).")
    metadata_path: str = _setting(
        "/.well-known/oauth-authorization-server", url_path, "Server metadata (RFC 8414)."
    )
    jwks_path: str = _setting(
        "/oauth/jwks", url_path, "Public signing keys (RFC 7517); served only with ``token_format = jwt``."
    )
    par_path: str = _setting(
        "/oauth/par",
        url_path,
        "Pushed authorization request endpoint (RFC 9126); served while the authorization "
        "endpoint offers a response type.",
    )
    device_authorization_path: str = _setting(
        "/oauth/device_authorization",
        url_path,
        "Device authorization endpoint (RFC 8628 §3.1); served while ``grants`` has "
        "``urn:ietf:params:oauth:grant-type:device_code``.",
    )
    device_verification_path: str = _setting(
        "/oauth/device",
        url_path,
        "The user-code page (RFC 8628 §3.3, the ``verification_uri``), served with the device grant.",
    )
    registration_path: str = _setting(
        "/oauth/register",
        url_path,
        "Client registration endpoint (RFC 7591 §3), advertised as ``registration_endpoint``; "
        "served unless ``registration = off``.",
    )
    registration_client_path: str = _setting(
        "/oauth/register/client",
        url_path,
        "Client configuration endpoint (RFC 7592 §2): a client's ``registration_client_uri`` is "
        "this path with ``?client_id=...``; served unless ``registration = off``.",
    )
    applications_path: str = _setting(
        "",
        optional_url_path,
        "The authorized-applications page: a logged-in user sees the clients holding their grants "
        "and revokes them (see *A user's grants*). Empty: off.",
    )
    endpoints: tuple[str, ...] = _setting(
        "",
        endpoint_list,
        "Endpoints of plug-ins to serve (see *Extending*), by registered name, each at the path "
        "it declares or at the one given as ``name=/path`` (``magic=/oauth/magic``). The "
        "built-in endpoints are always on, at their ``*_path``. Empty: none.",
    )
    introspection_clients: tuple[str, ...] = _setting(
        "",
        aslist,
        "Ids of the confidential clients (resource servers) allowed to call the introspection "
        "endpoint. Empty: none is.",
    )

    # -- transport, limits and throttling (see *Security model*) -----------
    profile: str = _setting(
        "none",
        choice(*PROFILES),
        "A security profile the server keeps to: ``none``, or ``fapi2``, the FAPI 2.0 Security "
        "Profile with DPoP (see *FAPI 2.0 Security Profile*). ``fapi2`` changes the defaults of "
        "``token_types`` (``DPoP``), ``require_pushed_authorization_requests`` (``true``), "
        "``code_ttl`` (``60``), ``rotate_refresh_tokens`` (``false``), ``dpop_signing_algs`` "
        "(``PS256 ES256 EdDSA``) and ``jwt_algorithm`` (``ES256``); accepts ``private_key_jwt`` "
        "clients only; and refuses to start with a setting that contradicts the profile, naming "
        "the key and the clause.",
    )
    require_https: bool = _setting(
        "true",
        asbool,
        "Refuse the authorization, token, revocation and introspection endpoints over plain "
        "HTTP (400 ``invalid_request``). No address or header exempts a request (a proxy on "
        "the same machine looks local); ``false`` allows plain HTTP, for a demo or tests on "
        "one machine only.",
    )
    trusted_proxies: TrustedProxies = _setting(
        "",
        trusted_proxy_list,
        "Addresses and networks (``10.0.0.0/8 ::1``) of the reverse proxies in front of this "
        "server, and ``unix`` for a proxy that connects through a Unix socket (``gunicorn "
        "--bind unix:...``). From them alone ``X-Forwarded-For`` (read right to left, skipping "
        "trusted hops) gives the client's address and ``X-Forwarded-Proto`` (its last value) "
        "the scheme, for throttling and ``require_https``. Empty: both headers are ignored.",
    )
    max_body_size: int = _setting(
        "65536",
        whole_number(1024, 100 * 1024 * 1024),
        "Largest request body our endpoints accept, in bytes; a larger one is 413 and never "
        "read (a chunked body is read up to this size only). Also the largest body the guard "
        "searches for an ``access_token``.",
    )
    throttle: bool = _setting(
        "true",
        asbool,
        "Count failed client authentications (per client id and address) and failed user "
        "passwords (per username and address) in the store; past ``throttle_max_failures`` "
        "the endpoint answers 429 with ``Retry-After`` to that address, without checking the "
        "credentials. Each attempt is counted before its credentials are checked, so "
        "concurrent guesses cannot overtake the count.",
    )
    throttle_max_failures: int = _setting(
        "10",
        whole_number(1, 1_000_000),
        "Failures allowed per client id or username *and* address within ``throttle_window``: "
        "a guesser is blocked at its own address, the owner of the credential is not.",
    )
    throttle_address_max_failures: int = _setting(
        "100",
        whole_number(1, 1_000_000),
        "Failures allowed per address, whatever client ids or usernames they named, within "
        "``throttle_window`` (against one address trying many accounts). Not counted when the "
        "address is unknown.",
    )
    throttle_window: int = _setting(
        "300",
        seconds,
        "Seconds over which failures are counted (from the first one), and how long a block lasts.",
    )
    normalize_username: Callable[..., Any] | None = _setting(
        "",
        dotted_callable,
        "``package.module:function(username)`` returning the form of a username the throttle "
        "counts, so spelling variants of one user share one count. Empty: "
        "``oauth_middleware.throttle:normalize_username``, which strips spaces, applies Unicode "
        "NFKC and casefolds. Passwords are still checked with the username as sent.",
    )

    # -- guard -------------------------------------------------------------
    realm: str = _setting(
        "oauth2",
        header_text,
        'Realm named in ``WWW-Authenticate`` challenges: printable ASCII without ``"`` or ``\\``.',
    )
    token_types: tuple[str, ...] = _setting(
        "Bearer",
        aslist,
        "Token types the guard accepts, by ``Authorization`` scheme: ``Bearer`` (RFC 6750), "
        "``DPoP`` (RFC 9449) and those registered by plug-ins (see *Extending*). A request "
        "without a token is answered with a challenge for each. Checked when the guard starts. "
        "With ``DPoP``, the token endpoint binds tokens to the key of a request's DPoP proof; "
        "``DPoP`` without ``Bearer`` requires a proof on every token request.",
    )
    dpop_signing_algs: tuple[str, ...] = _setting(
        "ES256 RS256 PS256 EdDSA",
        dpop_algs,
        "With ``DPoP`` in ``token_types``: the algorithms a DPoP proof (RFC 9449) may be signed "
        "with, advertised as ``dpop_signing_alg_values_supported``. Asymmetric only; ``none`` and "
        "HMAC are refused.",
    )
    dpop_proof_max_age: int = _setting(
        "300",
        whole_number(10, 3600),
        "Seconds a DPoP proof is accepted after its ``iat`` (plus ``jwt_leeway`` either way); its "
        "``jti`` is kept in the store that long to refuse a replay. Also how often server nonces "
        "rotate.",
    )
    dpop_nonce: bool = _setting(
        "false",
        asbool,
        "Require a server-issued nonce in every DPoP proof (RFC 9449 §8, §9): a proof without the "
        "current one is ``use_dpop_nonce`` with a ``DPoP-Nonce`` header. Nonces are derived from "
        "``session_secret`` (required then), so every process sharing it accepts them.",
    )
    resource_identifier: str = _setting(
        "",
        resource_identifier,
        "This resource server's identifier (RFC 8707 §2, RFC 9728 ``resource``), the URL clients "
        "use for it, e.g. ``https://api.example.com/mcp``. The guard then accepts only tokens "
        "for it: a token's resources (a JWT's ``aud``; ``audience`` for one issued without) must "
        "name it, else ``invalid_token``; and it serves its protected resource metadata. Empty: "
        "a JWT must name one of ``audience``, and a token restricted to a resource is refused.",
    )
    accept_tokens_without_audience: bool = _setting(
        "false",
        asbool,
        "With ``resource_identifier``: also accept a token that names no resource at all (an "
        "opaque token issued without ``resource`` while ``audience`` is empty). Off: such a "
        "token could be replayed at any resource server sharing the store. For a migration.",
    )
    token_from_header: bool = _setting("true", asbool, "Accept ``Authorization: Bearer`` tokens.")
    token_from_body: bool = _setting(
        "true",
        asbool,
        "Accept ``access_token`` in a form-encoded body (not on GET). The body is searched only "
        "when neither the header nor the query string has a token, and only when it has at most "
        "``max_body_size`` bytes and 1000 fields; a larger body is not read (no token: 401).",
    )
    token_from_query: bool = _setting(
        "false",
        asbool,
        "Accept ``access_token`` in the query string. Off by default: URLs end up in logs (RFC 9700).",
    )
    public_paths: PathMatcher = _setting(
        "",
        path_patterns,
        "Paths the guard lets through without a token, separated by spaces; a trailing ``*`` "
        "makes a prefix (``/static/*``).",
    )
    scope_rules: tuple[ScopeRule, ...] = _setting(
        "",
        parse_scope_rules,
        "Scopes required per method and path, one rule a line: ``METHODS PATH SCOPE...`` "
        "(``GET /api/* read``; ``*`` for any method; a rule for ``GET`` covers ``HEAD``). The "
        "first matching rule wins; with none matching, ``scope_rules_default`` decides.",
    )
    scope_rules_default: str = _setting(
        "allow",
        choice("allow", "deny"),
        "What a valid token may do where no ``scope_rules`` rule matches the method and path: "
        "``allow`` lets it through; ``deny`` answers 403 ``insufficient_scope`` (name every "
        "method and path the app serves in a rule). ``public_paths`` need no token either way.",
    )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Convert an ini section (or keyword arguments) into settings.

        :param config: setting name -> value. Strings are converted; a value
            given from Python that already has the setting's type (an int, a
            bool, a list or tuple, a :class:`PathMatcher`, :class:`ScopeRule`
            objects, a function for a callable setting) is accepted and checked
            like its ini form; None is the empty value.
        :raises ConfigError: unknown key, bad value or contradictory values
            (those both filters refuse; see :meth:`check_role` for the
            others), in one line naming the key.
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}
        # A profile's defaults under what the ini says: an unknown profile is refused below, by its key.
        config = {**PROFILE_DEFAULTS.get(_as_ini(config.get("profile")).strip(), {}), **config}
        values: dict[str, Any] = {}
        for key, raw in config.items():
            spec = fields.get(key)
            if spec is None:
                raise ConfigError(f"{key}: unknown setting{_did_you_mean(key, fields)}")
            try:
                values[key] = _convert(spec.metadata["convert"], raw)
            except ValueError as exc:
                raise ConfigError(f"{key}: {exc}") from None
        settings = cls(**values)
        settings._check_combinations()
        return settings

    def _check_combinations(self) -> None:
        """Refuse the combinations no filter can work with."""
        if self.scopes:
            unknown = [s for s in self.default_scope if s not in self.scopes]
            if unknown:
                raise ConfigError(f"default_scope: {' '.join(unknown)} not listed in scopes")
        # Every ``*_path`` setting is an endpoint's: asked of the fields, not listed here.
        seen: dict[str, str] = {}
        for spec in dataclasses.fields(self):
            if spec.name.endswith("_path"):
                path = getattr(self, spec.name)
                if not path:
                    continue  # an endpoint that is off
                if path in seen:
                    raise ConfigError(
                        f"{spec.name}: endpoint paths must all differ ({seen[path]} has {path})"
                    )
                seen[path] = spec.name
        if self.registration == "initial-access-token" and not self.initial_access_tokens:
            raise ConfigError("initial_access_tokens: required with registration = initial-access-token")
        unknown_scopes = [s for s in self.registration_scopes if self.scopes and s not in self.scopes]
        if unknown_scopes or (self.registration_scopes and not self.scopes):
            raise ConfigError("registration_scopes: every scope must be listed in scopes")
        if self.dpop_nonce and not self.session_secret:
            raise ConfigError(
                "dpop_nonce: needs session_secret, the same in every process (nonces derive from it)"
            )
        if not (self.token_from_header or self.token_from_body or self.token_from_query):
            raise ConfigError("token_from_header: at least one token source must be enabled")
        if self.token_format == "jwt":
            # A guard must know who issues tokens and who they are for (RFC 9068 §4).
            if not self.issuer:
                raise ConfigError("issuer: required with token_format = jwt (it is the tokens' iss)")
            if not self.audience:
                raise ConfigError("audience: required with token_format = jwt (it is the tokens' aud)")
        elif self.jwks_url:
            raise ConfigError("jwks_url: only used with token_format = jwt")

    def check_role(self, role: Role) -> None:
        """Check the combinations that hold for one filter only.

        :meth:`from_config` checks what every filter needs; one ini section (or
        one Settings object) may serve an authorization server and its
        guard-only resource servers, which need different keys. So each filter
        calls this as it is built, before it opens a store or reads a key:
        :class:`~oauth_middleware.server.AuthorizationServer` (hence
        :class:`~oauth_middleware.OAuth2Middleware` and ``#oauth2``) with
        ``"oauth2"``, :func:`~oauth_middleware.guard_from_settings` (``#guard``)
        with ``"guard"``. Checks that need I/O (key files, stores, the JWKS,
        ``clients_file``) run where the I/O is, at load too.

        :param role: the filter being built.
        :raises ConfigError: one line naming the key.
        """
        if role == "oauth2":
            self._check_authorization_server()
        check_profile(self, role)

    def _check_authorization_server(self) -> None:
        if not self.issuer:
            # RFC 8414 §3.3: the issuer is configured, never read from a request's Host header.
            raise ConfigError("issuer: required: this server's URL, e.g. issuer = https://auth.example.com")
        if self.jwks_url:
            # The server signs with its own keys; keys fetched from elsewhere are a guard's.
            raise ConfigError("jwks_url: only for a guard-only resource server (egg:oauth-middleware#guard)")
        if JWT_BEARER_GRANT in self.grants and not self.trusted_issuers_file:
            raise ConfigError(f"trusted_issuers_file: required by the {JWT_BEARER_GRANT} grant")
        if "password" in self.grants and self.verify_password is None:
            raise ConfigError("verify_password: required by the password grant (grants = ... password)")
        if self.store.startswith("memcache:") and not self.client_store:
            log.warning(
                "store: memcached may evict or lose clients (restart, memory pressure); "
                "keep them in a durable client_store"
            )


def _convert(convert: Callable[[str], Any], raw: Any) -> Any:
    """A setting's value from an ini string or from a value given from Python."""
    if convert is dotted_callable and (raw is None or callable(raw)):
        return raw  # verify_password=my_function: nothing to import
    return convert(_as_ini(raw))


def _as_ini(raw: Any) -> str:
    """A value given from Python, written as it would be in an ini file (and then converted).

    List items go on lines of their own: every list setting splits on new
    lines, and ``scope_rules`` takes one rule per line.
    """
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, TrustedProxies):
        return "\n".join([*(str(network) for network in raw.networks), *(["unix"] if raw.unix else [])])
    # Both are tuples: they must be caught before the lists.
    if isinstance(raw, PathMatcher):
        return " ".join([*sorted(raw.exact), *(f"{prefix}*" for prefix in raw.prefixes)])
    if isinstance(raw, ScopeRule):
        methods = "*" if raw.methods is None else ",".join(sorted(raw.methods))
        # One line per path: adjacent rules with the same methods and scopes match the same requests.
        paths = _as_ini(raw.paths).split(" ")
        return "\n".join(f"{methods} {path} {' '.join(raw.scopes)}" for path in paths)
    if isinstance(raw, (list, tuple, set, frozenset)):
        return "\n".join(_as_ini(item) for item in raw)
    return str(raw)


def _did_you_mean(key: str, known: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def reference() -> str:
    """The configuration reference in reStructuredText, for the README."""
    lines = []
    for spec in dataclasses.fields(Settings):
        default = spec.metadata["ini"] or "(empty)"
        lines.append(f"``{spec.name}``\n    Default: ``{default}``. {spec.metadata['doc']}\n")
    return "\n".join(lines)


def update_readme(path: str) -> None:
    """Rewrite the reference between the markers of ``path`` (the README)."""
    start, end = ".. settings-reference-start\n", ".. settings-reference-end\n"
    with open(path, encoding="utf-8") as handle:
        before, rest = handle.read().split(start, 1)
    after = rest.split(end, 1)[1]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"{before}{start}\n{reference()}\n{end}{after}")


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--update"]:
        update_readme(sys.argv[2])
    else:
        print(reference())
