"""``oauth-middleware keys generate``: a private PEM the ini can name, readable by its owner only."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import jwt
import pytest
import webtest
from conftest import issue_token
from jwt_keys import AUDIENCE, ISSUER, EchoApp

from oauth_middleware.cli import main
from oauth_middleware.keys import load_pem
from oauth_middleware.resource import guard_from_settings
from oauth_middleware.settings import Settings


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_generate_writes_a_key_the_ini_can_name(tmp_path, capsys, make_middleware, alg):
    path = tmp_path / "signing.pem"
    assert main(["keys", "generate", "--alg", alg, "--out", str(path)]) == 0
    out = capsys.readouterr().out
    key = load_pem(str(path), "test")
    assert f"kid: {key.kid}\n" in out
    assert f"jwt_algorithm = {alg}" in out
    assert key.alg == alg
    assert key.signer is not None
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    app = webtest.TestApp(
        make_middleware(
            EchoApp(),
            token_format="jwt",
            issuer=ISSUER,
            audience=AUDIENCE,
            grants="client_credentials",
            jwt_algorithm=alg,
            jwt_signing_key=str(path),
        )
    )
    token = issue_token(app)
    assert jwt.get_unverified_header(token) == {"alg": alg, "kid": key.kid, "typ": "at+jwt"}


def test_rsa_size_option(tmp_path):
    path = tmp_path / "big.pem"
    assert main(["keys", "generate", "--alg", "RS256", "--bits", "3072", "--out", str(path)]) == 0
    assert load_pem(str(path), "test").verifier.key_size == 3072


def test_an_existing_file_is_never_overwritten(tmp_path, capsys):
    path = tmp_path / "live.pem"
    path.write_text("the key live tokens depend on")
    assert main(["keys", "generate", "--alg", "ES256", "--out", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"oauth-middleware: error: {path}: exists; a live key is never overwritten\n"
    assert path.read_text() == "the key live tokens depend on"


def test_unwritable_location(tmp_path, capsys):
    path = tmp_path / "missing-dir" / "key.pem"
    assert main(["keys", "generate", "--alg", "EdDSA", "--out", str(path)]) == 2
    assert "No such file or directory" in capsys.readouterr().err


@pytest.mark.parametrize("alg", ["HS256", "none", "PS256"])
def test_only_asymmetric_algorithms(tmp_path, alg):
    with pytest.raises(SystemExit) as info:
        main(["keys", "generate", "--alg", alg, "--out", str(tmp_path / "k.pem")])
    assert info.value.code == 2
    assert not (tmp_path / "k.pem").exists()


def test_console_script(tmp_path):
    path = tmp_path / "k.pem"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "oauth_middleware.cli",
            "keys",
            "generate",
            "--alg",
            "ES256",
            "--out",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"kid: {load_pem(str(path), 'test').kid}\n")


def test_generate_refuses_a_symmetric_algorithm():
    from oauth_middleware.keys import generate_private_key

    with pytest.raises(ValueError, match="cannot generate a key for 'HS256'"):
        generate_private_key("HS256")


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_generate_writes_the_public_half_a_guard_can_name(tmp_path, capsys, make_middleware, alg):
    # Regression (issue 10, item 18): the README's guard-only snippet names KEY.pub.pem files
    # that nothing made.
    private, public = tmp_path / "2025-06.pem", tmp_path / "2025-06.pub.pem"
    assert main(["keys", "generate", "--alg", alg, "--out", str(private)]) == 0
    out = capsys.readouterr().out
    assert f"public key: {public}\n" in out
    assert b"PRIVATE" not in public.read_bytes()
    assert not stat.S_IMODE(os.stat(public).st_mode) & 0o022  # nobody else may replace it
    verifier = load_pem(str(public), "test")
    assert verifier.signer is None
    assert verifier.kid == load_pem(str(private), "test").kid
    # A token the private half signs passes a guard that holds only the public half.
    issuing = make_middleware(
        EchoApp(),
        token_format="jwt",
        issuer=ISSUER,
        audience=AUDIENCE,
        grants="client_credentials",
        jwt_algorithm=alg,
        jwt_signing_key=str(private),
    )
    token = issue_token(webtest.TestApp(issuing))
    guard = webtest.TestApp(
        guard_from_settings(
            EchoApp(),
            Settings.from_config(
                {
                    "token_format": "jwt",
                    "issuer": ISSUER,
                    "audience": AUDIENCE,
                    "jwt_algorithm": alg,
                    "jwt_verification_keys": str(public),
                }
            ),
        )
    )
    guard.get("/api/x", headers={"Authorization": f"Bearer {token}"}, status=200)


def test_an_existing_public_file_stops_before_anything_is_written(tmp_path, capsys):
    private, public = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    public.write_text("someone's public key")
    assert main(["keys", "generate", "--alg", "ES256", "--out", str(private)]) == 2
    assert (
        capsys.readouterr().err
        == f"oauth-middleware: error: {public}: exists; a live key is never overwritten\n"
    )
    assert not private.exists()
    assert public.read_text() == "someone's public key"


@pytest.mark.parametrize(
    ("out", "public"), [("a.pem", "a.pub.pem"), ("a.key", "a.key.pub.pem"), ("dir.d/a", "dir.d/a.pub.pem")]
)
def test_public_file_name(out, public):
    from oauth_middleware.keys import public_key_path

    assert public_key_path(out) == public
