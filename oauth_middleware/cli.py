"""The ``oauth-middleware`` command: serve a config, check it, manage clients and users' grants,
migrate the store.

Every failure is one line on stderr and a non-zero exit status, never a
traceback.
"""

from __future__ import annotations

import argparse
import configparser
import json
import logging.config
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .client_auth import AUTH_METHODS
from .clients import build_client, new_confidential_client_secret, parse_attribute
from .errors import ConfigError
from .keys import jwk_set
from .models import LEGACY_AUTH_METHODS, Client
from .profile import PROFILES
from .repository import Repository
from .sealed_secrets import SecretSealer, check_hmac_secret, generate_hmac_secret
from .secret_hash import pbkdf2_hash
from .settings import Settings
from .stores import migrate_store, redacted_url
from .user_grants import UserGrant, list_grants, revoke_grants
from .wiring import client_store_from_settings, store_config, store_from_settings

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

#: ``use =`` values that name our filters in an ini file.
_OUR_FILTERS = ("egg:oauth-middleware#oauth2", "egg:oauth-middleware#guard")
_DEFAULT_HOST = "127.0.0.1"
_DEFAULT_PORT = 8080


class CommandError(Exception):
    """A command-line problem, printed as one line."""


def _read_ini(path: str) -> configparser.ConfigParser:
    if not os.path.isfile(path):
        raise CommandError(f"{path}: no such config file")
    parser = configparser.ConfigParser(
        defaults={"here": os.path.dirname(os.path.abspath(path)), "__file__": os.path.abspath(path)}
    )
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise CommandError(f"{path}: {str(exc).splitlines()[0]}") from None
    return parser


def filter_settings(path: str) -> Settings:
    """The settings of the oauth2 (or guard) filter section of an ini file."""
    parser = _read_ini(path)
    for section in parser.sections():
        if section.startswith("filter:") and parser.get(section, "use", fallback="") in _OUR_FILTERS:
            local = {
                key: value
                for key, value in parser.items(section)
                if key not in ("use", "here", "__file__") and key not in parser.defaults()
            }
            return Settings.from_config(local)
    raise CommandError(f"{path}: no [filter:...] section with use = {_OUR_FILTERS[0]}")


def _client_repository(path: str) -> Repository:
    """A repository for the client commands: only the store clients live in is opened.

    With ``client_store`` set, that is the only store the commands need, so a
    token store (memcached) that this host cannot reach is no obstacle.
    """
    settings = filter_settings(path)
    clients = client_store_from_settings(settings) or store_from_settings(settings)
    return Repository(clients)


def _load_app(path: str) -> WSGIApplication:
    """Load the ini's main app with PasteDeploy, as ``pserve`` and gunicorn do.

    The working directory goes on ``sys.path`` first (gunicorn does the same),
    so ``use = call:myapp.wsgi:make_app`` finds a project's own modules.
    """
    from paste.deploy import loadapp
    from paste.deploy.loadwsgi import APP, loadcontext

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    uri = f"config:{os.path.abspath(path)}"
    try:
        if not _guarded(loadcontext(APP, uri)):
            raise CommandError(f"{path}: {_unused_filter_message(path)}")
        app: WSGIApplication = loadapp(uri)
        return app
    except (ImportError, LookupError) as exc:
        raise CommandError(
            f"{path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None


def _guarded(context: Any) -> bool:
    """Whether the app a PasteDeploy context builds passes through one of our filters.

    An app outside every filter of ours runs unguarded however well its filter
    section is configured, so ``check`` and ``serve`` refuse it. A composite
    (``urlmap``) builds its parts itself, out of sight: it is given the benefit
    of the doubt.
    """
    from paste.deploy.loadwsgi import FILTER, FILTER_APP, FILTER_WITH, PIPELINE

    from .paste import guard_filter_factory, oauth2_filter_factory

    kind = context.object_type
    if kind is PIPELINE:
        return any(_guarded(part) for part in (*context.filter_contexts, context.app_context))
    if kind is FILTER_WITH or kind is FILTER_APP:
        return _guarded(context.filter_context) or _guarded(context.next_context)
    if kind is FILTER:
        return context.object in (oauth2_filter_factory, guard_filter_factory)
    return context.protocol in ("paste.composite_factory", "paste.composit_factory")


def _unused_filter_message(path: str) -> str:
    parser = _read_ini(path)
    ours = [
        f"[{section}]"
        for section in parser.sections()
        if section.startswith("filter:") and parser.get(section, "use", fallback="") in _OUR_FILTERS
    ]
    if not ours:
        return f"no filter uses {_OUR_FILTERS[0]} or {_OUR_FILTERS[1]}: the app would run unguarded"
    return (
        f"{' and '.join(ours)} is not in the pipeline of the main app: the app would run unguarded "
        "(add filter-with = NAME to [app:main], or list it in a [pipeline:main])"
    )


def _configure_logging(path: str) -> None:
    """Apply the ini's ``[loggers]``, ``[handlers]`` and ``[formatters]``, as ``pserve`` does.

    ``%(here)s`` in a handler's ``args`` is the ini's directory (so a log file
    can sit next to it). A mistake in these sections is one line, like any other.
    """
    here = os.path.dirname(os.path.abspath(path))
    try:
        logging.config.fileConfig(
            path, defaults={"here": here, "__file__": os.path.abspath(path)}, disable_existing_loggers=False
        )
    except Exception as exc:  # fileConfig raises whatever the section's contents cause
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise CommandError(f"{path}: logging sections: {type(exc).__name__}: {reason}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    """Load the ini with PasteDeploy and serve it with waitress."""
    from waitress.server import create_server

    parser = _read_ini(args.config)
    if parser.has_section("loggers"):
        _configure_logging(args.config)
    else:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    host = args.host or parser.get("server:main", "host", fallback=_DEFAULT_HOST)
    port = args.port or parser.getint("server:main", "port", fallback=_DEFAULT_PORT)
    app = _load_app(args.config)
    # Bind before saying we serve: a port in use is one line, not a promise and a traceback.
    try:
        server = create_server(app, host=host, port=port)
    except OSError as exc:
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    print(f"serving {args.config} on http://{host}:{port}", flush=True)
    server.run()
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Load the ini (settings, store, clients) without serving."""
    _read_ini(args.config)
    _load_app(args.config)
    print(f"{args.config}: ok")
    return 0


def cmd_client_add(args: argparse.Namespace) -> int:
    """Register a client and say what was stored; a generated secret is printed once, stored hashed."""
    if args.public and args.secret is not None:
        raise CommandError("--secret and --public exclude each other")
    keyed = args.jwks_file is not None or args.jwks_uri is not None
    if keyed and (args.public or args.secret is not None):
        raise CommandError("--jwks-file or --jwks-uri replace the secret: no --secret or --public")
    settings = filter_settings(args.config)
    generated, secret_hash, sealed = None, None, None
    if args.auth_method == "client_secret_jwt":
        if args.public or keyed:
            raise CommandError("client_secret_jwt needs a secret: no --public, --jwks-file or --jwks-uri")
        secret, sealed = _sealed_secret(settings, args.client_id, args.secret, args.signing_alg)
        generated = secret if args.secret is None else None
    elif args.secret is not None:
        secret_hash = pbkdf2_hash(args.secret)  # chosen, so maybe guessable: salted and slow
    elif not args.public and not keyed:
        generated, secret_hash = new_confidential_client_secret()
    try:
        client = build_client(
            args.client_id,
            secret_hash=secret_hash,
            redirect_uris=args.redirect_uri,
            grant_types=args.grant,
            response_types=args.response_type or (["code"] if "authorization_code" in args.grant else []),
            scopes=args.scope,
            name=args.name or "",
            server_scopes=settings.scopes,
            token_endpoint_auth_method=args.auth_method,
            dpop_bound_access_tokens=args.dpop_bound_access_tokens,
            jwks=_read_jwks(args.jwks_file),
            jwks_uri=args.jwks_uri,
            token_endpoint_auth_signing_alg=args.signing_alg,
            secret_sealed=sealed,
            resources=args.resource,
            meta=_attributes("--meta", args.meta),
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    client = replace(client, require_pushed_authorization_requests=args.require_pushed_authorization_requests)
    # A client the server's profile would refuse on every request is refused now.
    PROFILES[settings.profile].check_client(client, "client add:")
    repository = _client_repository(args.config)
    if repository.get_client(client.client_id) is not None and not args.replace:
        raise CommandError(f"client {client.client_id!r} exists (use --replace to overwrite it)")
    repository.save_client(client)
    _print_registration(client, settings)
    if generated is not None:
        print(f"client_secret: {generated}")
        kept = "encrypted" if sealed is not None else "hashed"
        print(f"Store this secret now: it is kept {kept} and cannot be shown again.")
    return 0


def _sealed_secret(
    settings: Settings, client_id: str, secret: str | None, alg: str | None
) -> tuple[str, str]:
    """A ``client_secret_jwt`` secret (``secret``, else a generated one) and its sealed form.

    :raises CommandError: no ``client_secret_key`` in the ini, or a secret too short for the HMAC.
    """
    if not settings.client_secret_key:
        raise CommandError("client_secret_jwt: the ini needs client_secret_key, which encrypts the secret")
    chosen = generate_hmac_secret() if secret is None else secret
    try:
        check_hmac_secret(chosen, alg if alg in ("HS256", "HS384", "HS512") else None)
    except ValueError as exc:
        raise CommandError(f"--secret: {exc}") from None
    return chosen, SecretSealer(settings.client_secret_key).seal(client_id, chosen)


def _attributes(option: str, items: Sequence[str]) -> dict[str, str]:
    """The ``key=value`` items of a repeatable option.

    :raises CommandError: one that is not an attribute, or a key given twice.
    """
    attributes: dict[str, str] = {}
    for item in items:
        try:
            key, value = parse_attribute(item)
        except ValueError as exc:
            raise CommandError(f"{option}: {exc}") from None
        if key in attributes:
            raise CommandError(f"{option}: {key} is given twice")
        attributes[key] = value
    return attributes


def _read_jwks(path: str | None) -> list[Mapping[str, Any]]:
    """The keys of ``--jwks-file`` (none without one).

    :raises CommandError: unreadable, or not a JWK Set.
    """
    if path is None:
        return []
    try:
        with open(path, encoding="utf-8") as handle:
            return jwk_set(json.load(handle))
    except (OSError, ValueError) as exc:
        raise CommandError(f"--jwks-file: cannot use {path!r}: {exc}") from None


def _print_registration(client: Client, settings: Settings) -> None:
    """What ``client add`` stored, with what an empty scope list means (see :mod:`.scopes`)."""
    scopes = " ".join(client.scopes)
    if not scopes and settings.default_scope:
        scopes = f"(none: it may only have the server's default_scope, {' '.join(settings.default_scope)})"
    elif not scopes:
        scopes = "(none: it may have no scope, as the server has no default_scope)"
    print(f"client_id: {client.client_id}")
    print(f"type: {'public (no secret)' if client.is_public else 'confidential'}")
    print(f"token_endpoint_auth_method: {_auth_method_shown(client)}")
    if client.jwks_uri:
        print(f"jwks_uri: {client.jwks_uri}")
    elif client.jwks:
        print(f"jwks: {len(client.jwks)} keys")
    if client.token_endpoint_auth_signing_alg:
        print(f"token_endpoint_auth_signing_alg: {client.token_endpoint_auth_signing_alg}")
    if client.resources:
        print(f"resources: {' '.join(client.resources)}")
    print(f"grants: {' '.join(client.grant_types) or '(none)'}")
    print(f"response_types: {' '.join(client.response_types) or '(none)'}")
    print(f"redirect_uris: {' '.join(client.redirect_uris) or '(none)'}")
    print(f"scopes: {scopes}")
    if client.require_pushed_authorization_requests:
        print("require_pushed_authorization_requests: true")
    if client.dpop_bound_access_tokens:
        print("dpop_bound_access_tokens: true")
    for key, value in sorted(client.meta.items()):
        print(f"meta.{key}: {value}")


def cmd_client_list(args: argparse.Namespace) -> int:
    """List clients without secrets (those with all the ``--where`` attributes)."""
    where = _attributes("--where", args.where)
    for client in _client_repository(args.config).find_clients(where):
        kind = "public" if client.is_public else "confidential"
        print(
            f"{client.client_id}\t{kind}\tgrants={','.join(client.grant_types) or '-'}"
            f"\tscopes={' '.join(client.scopes) or '-'}\tredirect_uris={' '.join(client.redirect_uris) or '-'}"
            f"\ttoken_endpoint_auth_method={_auth_method_shown(client)}"
            + "".join(f"\tmeta.{key}={value}" for key, value in sorted(client.meta.items()))
        )
    return 0


def _auth_method_shown(client: Client) -> str:
    """A client's ``token_endpoint_auth_method``; what a client stored before 0.2.0 may use."""
    if client.token_endpoint_auth_method is not None:
        return client.token_endpoint_auth_method
    return "none" if client.is_public else ",".join(LEGACY_AUTH_METHODS)


def cmd_client_remove(args: argparse.Namespace) -> int:
    """Remove a client."""
    if not _client_repository(args.config).remove_client(args.client_id):
        raise CommandError(f"no client {args.client_id!r}")
    print(f"removed {args.client_id}")
    return 0


def cmd_client_hash(args: argparse.Namespace) -> int:
    """Print the hash of a secret for a ``clients_file`` (generating one if none given).

    A given secret gets a salted PBKDF2 hash, a generated one (256 random bits) its SHA-256.
    """
    if args.secret is not None:
        print(f"secret_hash: {pbkdf2_hash(args.secret)}")
        return 0
    secret, secret_hash = new_confidential_client_secret()
    print(f"client_secret: {secret}")
    print(f"secret_hash: {secret_hash}")
    return 0


def cmd_client_seal(args: argparse.Namespace) -> int:
    """Print the ``secret_sealed`` of a ``client_secret_jwt`` client for a ``clients_file`` (generating a secret if none given)."""
    secret, sealed = _sealed_secret(
        filter_settings(args.config), args.client_id, args.secret, args.signing_alg
    )
    if args.secret is None:
        print(f"client_secret: {secret}")
    print(f"secret_sealed: {sealed}")
    return 0


def cmd_keys_generate(args: argparse.Namespace) -> int:
    """Write a new private signing key (mode 0600) and its public half; print its ``kid``."""
    from .keys import public_key_path, write_private_key

    try:
        key = write_private_key(args.out, args.alg, args.bits)
    except FileExistsError as exc:
        raise CommandError(f"{exc.filename}: exists; a live key is never overwritten") from None
    except OSError as exc:
        raise CommandError(f"{exc.filename or args.out}: {exc.strerror}") from None
    public = public_key_path(args.out)
    print(f"kid: {key.kid}")
    print(f"public key: {public}")
    print(f"In the ini: jwt_algorithm = {key.alg}  and  jwt_signing_key = {os.path.abspath(args.out)}")
    print(f"On a guard: jwt_verification_keys = {os.path.abspath(public)}")
    return 0


def cmd_throttle_clear(args: argparse.Namespace) -> int:
    """Lift a throttle block: forget the counts of an address, and of its pair with a client or user."""
    from .proxies import parse_ip
    from .throttle import Throttle

    address = None if args.address == "unknown" else parse_ip(args.address)
    if address is None and args.address != "unknown":
        raise CommandError(f"--address: expected an IP address or unknown, got {args.address!r}")
    settings = filter_settings(args.config)
    throttle = Throttle(Repository(store_from_settings(settings)), settings)
    if args.client_id is not None:
        subject: str | None = f"client:{args.client_id}"
    elif args.username is not None:
        subject = throttle.user_subject(args.username)
    elif address is None:
        raise CommandError("--address unknown: name the --client-id or --username to clear")
    else:
        subject = None
    for cleared in throttle.clear(address, subject):
        print(f"cleared {cleared}")
    return 0


def cmd_store_migrate(args: argparse.Namespace) -> int:
    """Create or upgrade the schema of ``store`` (and of ``client_store``, if set) and say what was done."""
    settings = filter_settings(args.config)
    targets = {"store": settings.store}
    if settings.client_store and settings.client_store != settings.store:
        targets["client_store"] = settings.client_store
    for setting, url in targets.items():
        versions = migrate_store(store_config(settings, url), setting=setting)
        if versions is None:
            done = "no schema to migrate (reachable)"
        elif versions[0] == 0:
            done = f"schema created (version {versions[1]})"
        elif versions[0] < versions[1]:
            done = f"schema upgraded from version {versions[0]} to {versions[1]}"
        else:
            done = f"schema up to date (version {versions[1]})"
        print(f"{setting}: {redacted_url(url)}: {done}")
    return 0


def _grants_repository(path: str) -> Repository:
    """A repository for the grants commands: the token store, and the client store for client ids."""
    settings = filter_settings(path)
    return Repository(store_from_settings(settings), client_store_from_settings(settings))


def _when(unix_time: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix_time))


def _print_grants(grants: Sequence[UserGrant]) -> None:
    for grant in grants:
        holds = [word for word, held in (("tokens", grant.tokens), ("consent", grant.consent)) if held]
        print(
            f"{grant.client_id}\tsince={_when(grant.since)}\tuntil={_when(grant.until)}"
            f"\tscopes={' '.join(grant.scopes) or '-'}\tholds={','.join(holds)}"
        )


def cmd_grants_list(args: argparse.Namespace) -> int:
    """List the clients holding grants of a user."""
    grants = list_grants(_grants_repository(args.config), args.user)
    if not grants:
        raise CommandError(f"user {args.user!r} has no grants")
    _print_grants(grants)
    return 0


def cmd_grants_revoke(args: argparse.Namespace) -> int:
    """End a user's grants (to one client): codes, tokens, remembered consent."""
    repository = _grants_repository(args.config)
    ended = revoke_grants(repository, args.user, args.client_id)
    if not ended:
        if args.client_id is None:
            raise CommandError(f"user {args.user!r} has no grants")
        # A removed client's grants are still ended above; only a name never registered is a typo.
        if repository.get_client(args.client_id) is None:
            raise CommandError(f"no client {args.client_id!r}")
        raise CommandError(f"user {args.user!r} has no grants with client {args.client_id!r}")
    _print_grants(ended)
    print(f"revoked: every code, token and remembered consent of {args.user} above")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``oauth-middleware`` command."""
    parser = argparse.ArgumentParser(
        prog="oauth-middleware",
        description="Serve an ini file with oauth-middleware, check it, manage its clients and keys.",
        epilog="Every error is one line on stderr and exit status 2.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")
    config_help = "the PasteDeploy ini file"

    serve = commands.add_parser("serve", help="serve an ini file with waitress")
    serve.add_argument("config", help=config_help)
    serve.add_argument("--host", help="address to listen on (default: [server:main] host, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: [server:main] port, else 8080)")
    serve.set_defaults(func=cmd_serve)

    check = commands.add_parser(
        "check",
        help="load an ini file as serve would, without serving, and report the first problem",
        description="Load an ini file as serve and gunicorn --paste would (settings, store, clients, "
        "keys, the filter in the pipeline) and report the first problem in one line. "
        "Run it before deploying.",
    )
    check.add_argument("config", help=config_help)
    check.set_defaults(func=cmd_check)

    client = commands.add_parser("client", help="manage clients").add_subparsers(
        dest="action", required=True, metavar="ACTION", help="what to do with clients"
    )
    add = client.add_parser("add", help="register a client")
    add.add_argument("config", help=f"{config_help}; the client goes to the store it names")
    add.add_argument("--client-id", required=True, help="the client's id")
    kind = add.add_mutually_exclusive_group()
    kind.add_argument("--secret", help="the client secret (default: generate one)")
    kind.add_argument("--public", action="store_true", help="a public client without a secret")
    add.add_argument(
        "--redirect-uri", action="append", default=[], metavar="URI", help="a redirect URI (repeat for more)"
    )
    add.add_argument(
        "--grant",
        action="append",
        default=[],
        metavar="TYPE",
        help="a grant type it may use (repeat for more)",
    )
    add.add_argument(
        "--response-type",
        action="append",
        default=[],
        metavar="TYPE",
        help="code or token (default: code when it has the authorization_code grant)",
    )
    add.add_argument(
        "--scope",
        action="append",
        default=[],
        metavar="SCOPE",
        help="a scope it may ask for (repeat for more)",
    )
    add.add_argument(
        "--auth-method",
        metavar="METHOD",
        help="how it authenticates at the token endpoint: "
        f"{', '.join(AUTH_METHODS)} (default: client_secret_basic, none for --public)",
    )
    add.add_argument(
        "--dpop-bound-access-tokens",
        action="store_true",
        help="its token requests must carry a DPoP proof: it only gets DPoP-bound tokens (RFC 9449 §5.2)",
    )
    add.add_argument(
        "--jwks-file", metavar="FILE", help="for private_key_jwt: a JSON JWK Set of its public keys"
    )
    add.add_argument(
        "--jwks-uri", metavar="URL", help="for private_key_jwt: where it publishes its public keys"
    )
    add.add_argument(
        "--signing-alg",
        metavar="ALG",
        help="the one algorithm its assertions may use: for private_key_jwt RS256, PS256, ES256 or EdDSA "
        "(default: its key's); for client_secret_jwt HS256, HS384 or HS512 (default: any, and the "
        "secret must then have 64 bytes)",
    )
    add.add_argument(
        "--resource",
        action="append",
        default=[],
        metavar="URI",
        help="a resource (RFC 8707) it may ask tokens for; repeat for more (default: any the server allows)",
    )
    add.add_argument("--name", help="the name the consent page shows")
    add.add_argument(
        "--require-pushed-authorization-requests",
        action="store_true",
        help="its authorization requests must be pushed first (RFC 9126 PAR)",
    )
    add.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an attribute of your own (a description, a logo URL, a tag to find it by; repeat for more)",
    )
    add.add_argument("--replace", action="store_true", help="overwrite an existing client")
    add.set_defaults(func=cmd_client_add)

    listing = client.add_parser("list", help="list clients (never their secrets)")
    listing.add_argument("config", help=config_help)
    listing.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only clients with this attribute (repeat: all of them)",
    )
    listing.set_defaults(func=cmd_client_list)

    remove = client.add_parser("remove", help="remove a client")
    remove.add_argument("config", help=config_help)
    remove.add_argument("--client-id", required=True, help="the id of the client to remove")
    remove.set_defaults(func=cmd_client_remove)

    hashing = client.add_parser("hash", help="print the secret_hash of a secret for a clients_file")
    hashing.add_argument("--secret", help="the secret to hash (default: generate one and print it)")
    hashing.set_defaults(func=cmd_client_hash)

    seal = client.add_parser(
        "seal",
        help="print the secret_sealed of a client_secret_jwt client for a clients_file",
        description="Encrypt a client_secret_jwt secret with the ini's client_secret_key, for the client "
        "it is for (a sealed secret opens for that client id only).",
    )
    seal.add_argument("config", help=f"{config_help}, whose client_secret_key encrypts the secret")
    seal.add_argument("--client-id", required=True, help="the client's id")
    seal.add_argument("--secret", help="the secret (default: generate one and print it)")
    seal.add_argument("--signing-alg", choices=("HS256", "HS384", "HS512"), help="its one HMAC algorithm")
    seal.set_defaults(func=cmd_client_seal)

    keys = commands.add_parser("keys", help="JWT signing keys").add_subparsers(
        dest="action", required=True, metavar="ACTION", help="what to do with keys"
    )
    generate = keys.add_parser(
        "generate", help="write a new key pair as PEM files (KEY.pem and KEY.pub.pem) and print its kid"
    )
    generate.add_argument(
        "--alg", required=True, choices=("RS256", "ES256", "EdDSA"), help="the algorithm the key signs with"
    )
    generate.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="the private key's PEM file to create; the public half goes to FILE.pub.pem "
        "(.pem replaced); neither is ever overwritten",
    )
    generate.add_argument("--bits", type=int, default=2048, choices=(2048, 3072, 4096), help="RSA key size")
    generate.set_defaults(func=cmd_keys_generate)

    store = commands.add_parser("store", help="the store's schema").add_subparsers(
        dest="action", required=True, metavar="ACTION", help="what to do with the store"
    )
    migrate = store.add_parser(
        "migrate",
        help="create or upgrade the tables of store and client_store (SQLite, PostgreSQL, MySQL)",
        description="Create or upgrade the schema of the ini's store and client_store now, for "
        "deployments whose application may not run DDL; the stores also do it on first use.",
    )
    migrate.add_argument("config", help=config_help)
    migrate.set_defaults(func=cmd_store_migrate)

    throttle = commands.add_parser("throttle", help="failed-login throttling").add_subparsers(
        dest="action", required=True, metavar="ACTION", help="what to do with the throttle"
    )
    clear = throttle.add_parser("clear", help="lift a block: forget the failures counted for an address")
    clear.add_argument("config", help="the ini file whose store keeps the counts")
    clear.add_argument("--address", required=True, help="the client's IP address, or unknown")
    who = clear.add_mutually_exclusive_group()
    who.add_argument("--client-id", help="also the count of this client id at that address")
    who.add_argument("--username", help="also the count of this username at that address")
    clear.set_defaults(func=cmd_throttle_clear)

    grants = commands.add_parser("grants", help="a user's grants to clients").add_subparsers(
        dest="action", required=True, metavar="ACTION", help="what to do with a user's grants"
    )
    grants_list = grants.add_parser(
        "list", help="the clients holding a user's grants: since when, until when, which scopes"
    )
    grants_list.add_argument("config", help="the ini file whose store keeps the tokens")
    grants_list.add_argument("--user", required=True, help="the user id, as the login hooks name the user")
    grants_list.set_defaults(func=cmd_grants_list)
    grants_revoke = grants.add_parser(
        "revoke",
        help="end a user's grants at once: codes, access and refresh tokens, remembered consent "
        "(a password change, logging out everywhere)",
    )
    grants_revoke.add_argument("config", help="the ini file whose store keeps the tokens")
    grants_revoke.add_argument("--user", required=True, help="the user id, as the login hooks name the user")
    grants_revoke.add_argument(
        "--client", dest="client_id", help="only the grants to this client (default: every client)"
    )
    grants_revoke.set_defaults(func=cmd_grants_revoke)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; errors are one line on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (CommandError, ConfigError) as exc:
        print(f"oauth-middleware: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
