"""Key loading: pinned algorithms, kids, rotation sets, one-line errors and the public JWKS."""

from __future__ import annotations

import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import RSAAlgorithm
from jwt_keys import SECRET, SECRET_2, b64, make_keys

from oauth_middleware.errors import ConfigError
from oauth_middleware.keys import PRIVATE_MEMBERS, load_keys, thumbprint
from oauth_middleware.settings import Settings

BASE = {"token_format": "jwt", "issuer": "https://auth.example.com", "audience": "api"}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


def load(**config):
    return load_keys(Settings.from_config({**BASE, **config}))


def write_jwks(tmp_path, *entries, name="keys.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"keys": list(entries)}))
    return str(path)


def private_jwk(key, **more):
    return {**RSAAlgorithm.to_jwk(key, as_dict=True), **more}


@pytest.mark.parametrize(
    ("alg", "name"),
    [
        pytest.param("RS256", "rsa", id="rsa"),
        pytest.param("ES256", "ec", id="p256"),
        pytest.param("EdDSA", "ed", id="ed25519"),
    ],
)
def test_pem_signing_key_pins_its_algorithm(keys, alg, name):
    keyset = load(jwt_algorithm=alg, jwt_signing_key=getattr(keys, f"{name}_pem"))
    assert keyset.signing is not None
    assert keyset.signing.alg == alg
    assert keyset.signing.kid == getattr(keys, f"{name}_kid")
    assert list(keyset.verification) == [keyset.signing.kid]


def test_kid_is_the_rfc7638_thumbprint_and_the_same_for_the_public_half(keys):
    private = load(jwt_signing_key=keys.rsa_pem).signing
    public = load_keys(Settings.from_config({**BASE, "jwt_verification_keys": keys.rsa_pub}), signing=False)
    jwk = RSAAlgorithm.to_jwk(keys.rsa.public_key(), as_dict=True)
    assert private.kid == thumbprint(jwk) == next(iter(public.verification))
    # RFC 7638 §3.1 example key and thumbprint.
    example = {
        "kty": "RSA",
        "e": "AQAB",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWK"
        "RXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSq"
        "zs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-"
        "G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    }
    assert thumbprint(example) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_hs256_secrets_first_signs_others_verify():
    keyset = load(jwt_algorithm="HS256", jwt_secret=f"{SECRET} {SECRET_2}")
    assert keyset.signing.verifier == SECRET.encode()
    assert len(keyset.verification) == 2
    old = next(key for key in keyset.verification.values() if key is not keyset.signing)
    assert old.verifier == SECRET_2.encode()
    assert {key.alg for key in keyset.verification.values()} == {"HS256"}


def test_verification_keys_never_sign_even_when_private(keys):
    keyset = load(jwt_signing_key=keys.rsa_pem, jwt_verification_keys=keys.rsa_old_pem)
    old = keyset.verification[keys.rsa_old_kid]
    assert old.signer is None
    assert keyset.signing.kid == keys.rsa_kid


def test_previous_keys_of_another_algorithm_still_verify(keys):
    keyset = load(jwt_algorithm="ES256", jwt_signing_key=keys.ec_pem, jwt_verification_keys=keys.rsa_pub)
    assert keyset.verification[keys.rsa_kid].alg == "RS256"
    assert keyset.signing.alg == "ES256"


def test_jwks_file_private_key_signs_and_kid_is_kept(keys, tmp_path):
    path = write_jwks(
        tmp_path,
        private_jwk(keys.rsa, kid="current"),
        {**RSAAlgorithm.to_jwk(keys.rsa_old.public_key(), as_dict=True), "kid": "previous", "alg": "RS256"},
    )
    keyset = load(jwt_jwks_file=path)
    assert keyset.signing.kid == "current"
    assert set(keyset.verification) == {"current", "previous"}
    assert keyset.verification["previous"].signer is None


def test_jwks_file_without_kid_gets_the_thumbprint(keys, tmp_path):
    keyset = load(jwt_jwks_file=write_jwks(tmp_path, private_jwk(keys.rsa)))
    assert keyset.signing.kid == keys.rsa_kid


def test_signing_kid_chooses_among_several(keys, tmp_path):
    path = write_jwks(tmp_path, private_jwk(keys.rsa, kid="a"), private_jwk(keys.rsa_old, kid="b"))
    assert load(jwt_jwks_file=path).signing.kid == "a"
    assert load(jwt_jwks_file=path, jwt_signing_kid="b").signing.kid == "b"


def test_jwks_file_oct_key_for_hs256(tmp_path):
    path = write_jwks(tmp_path, {"kty": "oct", "k": b64(SECRET.encode()), "kid": "hmac-1"})
    keyset = load(jwt_algorithm="HS256", jwt_jwks_file=path)
    assert keyset.signing.kid == "hmac-1"
    assert keyset.signing.verifier == SECRET.encode()


def test_guard_only_needs_no_signing_key(keys):
    settings = Settings.from_config({**BASE, "jwt_verification_keys": f"{keys.rsa_pub} {keys.ec_pub}"})
    keyset = load_keys(settings, signing=False)
    assert keyset.signing is None
    assert set(keyset.verification) == {keys.rsa_kid, keys.ec_kid}


def test_same_key_twice_is_one_entry(keys):
    keyset = load(jwt_signing_key=keys.rsa_pem, jwt_verification_keys=keys.rsa_pub)
    assert list(keyset.verification) == [keys.rsa_kid]
    assert keyset.verification[keys.rsa_kid].signer is not None


# -- the public JWK Set -------------------------------------------------------


@pytest.mark.parametrize("name", ["rsa", "ec", "ed"])
def test_jwks_publishes_public_halves_only(keys, name):
    alg = {"rsa": "RS256", "ec": "ES256", "ed": "EdDSA"}[name]
    keyset = load(jwt_algorithm=alg, jwt_signing_key=getattr(keys, f"{name}_pem"), jwt_secret=SECRET)
    published = keyset.jwks()["keys"]
    assert len(published) == 1  # the HS256 secret is never published
    jwk = published[0]
    assert not PRIVATE_MEMBERS & set(jwk)
    assert jwk["kid"] == getattr(keys, f"{name}_kid")
    assert jwk["alg"] == alg
    assert jwk["use"] == "sig"
    assert "key_ops" not in jwk
    # The published key verifies what the private key signs.
    token = jwt.encode({"a": 1}, getattr(keys, name), algorithm=alg)
    assert jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=[alg]) == {"a": 1}


def test_jwks_of_hs256_is_empty():
    assert load(jwt_algorithm="HS256", jwt_secret=SECRET).jwks() == {"keys": []}


def test_jwks_file_with_secrets_and_private_keys_publishes_no_secret(keys, tmp_path):
    path = write_jwks(
        tmp_path, private_jwk(keys.rsa, kid="rsa"), {"kty": "oct", "k": b64(SECRET.encode()), "kid": "hs"}
    )
    published = load(jwt_jwks_file=path).jwks()["keys"]
    assert [jwk["kid"] for jwk in published] == ["rsa"]
    assert not PRIVATE_MEMBERS & set(published[0])


# -- one-line errors naming the key ------------------------------------------


def encrypted_pem(keys, tmp_path):
    data = keys.rsa.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"password"),
    )
    path = tmp_path / "encrypted.pem"
    path.write_bytes(data)
    return str(path)


def text_file(tmp_path, text="hello"):
    path = tmp_path / "text"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("make_config", "message"),
    [
        pytest.param(lambda k, p: {}, "jwt_signing_key: token_format = jwt needs a RS256 key", id="no-key"),
        pytest.param(
            lambda k, p: {"jwt_algorithm": "HS256"},
            "jwt_secret: token_format = jwt needs a HS256 key",
            id="no-secret",
        ),
        pytest.param(
            lambda k, p: {"jwt_signing_key": str(p / "missing.pem")},
            "jwt_signing_key: cannot read",
            id="missing",
        ),
        pytest.param(lambda k, p: {"jwt_signing_key": text_file(p)}, "is not a PEM key", id="not-pem"),
        pytest.param(lambda k, p: {"jwt_signing_key": encrypted_pem(k, p)}, "is encrypted", id="encrypted"),
        pytest.param(lambda k, p: {"jwt_signing_key": k.rsa_small_pem}, "at least 2048 bits", id="rsa-1024"),
        pytest.param(
            lambda k, p: {"jwt_algorithm": "ES256", "jwt_signing_key": k.ec384_pem},
            "jwt_signing_key: ES256 needs a P-256 key",
            id="p384",
        ),
        pytest.param(
            lambda k, p: {"jwt_algorithm": "ES256", "jwt_signing_key": k.rsa_pem},
            "jwt_signing_key: the key is RS256, not ES256",
            id="alg-mismatch",
        ),
        pytest.param(
            lambda k, p: {"jwt_verification_keys": k.rsa_small_pub, "jwt_signing_key": k.rsa_pem},
            "jwt_verification_keys: RSA keys need at least 2048 bits",
            id="small-verification-key",
        ),
        pytest.param(
            lambda k, p: {"jwt_algorithm": "HS256", "jwt_secret": "short"},
            "jwt_secret: an HS256 secret needs at least 32 bytes",
            id="short-secret",
        ),
        pytest.param(
            lambda k, p: {"jwt_signing_key": k.rsa_pem, "jwt_signing_kid": "nope"},
            "jwt_signing_kid: no key that can sign has kid 'nope'",
            id="unknown-signing-kid",
        ),
        pytest.param(
            lambda k, p: {
                "jwt_algorithm": "ES256",
                "jwt_signing_key": k.ec_pem,
                "jwt_signing_kid": k.ec_kid,
                "jwt_secret": SECRET,
            },
            None,
            id="signing-kid-ok",
        ),
        pytest.param(
            lambda k, p: {"jwt_jwks_file": text_file(p, "{nope")}, "jwt_jwks_file: ", id="jwks-not-json"
        ),
        pytest.param(
            lambda k, p: {"jwt_jwks_file": str(p / "none.json")},
            "jwt_jwks_file: cannot read",
            id="jwks-missing",
        ),
    ],
)
def test_bad_key_settings_are_one_line_errors(keys, tmp_path, make_config, message):
    config = make_config(keys, tmp_path)
    if message is None:
        assert load(**config).signing is not None
        return
    with pytest.raises(ConfigError) as info:
        load(**config)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_signing_kid_of_another_algorithm(keys):
    with pytest.raises(ConfigError, match="jwt_signing_kid: that key is RS256, not HS256"):
        load(
            jwt_algorithm="HS256",
            jwt_secret=SECRET,
            jwt_signing_key=keys.rsa_pem,
            jwt_signing_kid=keys.rsa_kid,
        )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        pytest.param({"kty": "RSA"}, "key 0 of", id="broken-rsa"),
        pytest.param({"kty": "oct", "k": b64(SECRET.encode()), "alg": "none"}, "alg 'none'", id="alg-none"),
        pytest.param(
            {"kty": "oct", "k": b64(SECRET.encode()), "alg": "HS512"}, "alg 'HS512'", id="alg-hs512"
        ),
        pytest.param({"kty": "oct", "k": b64(b"short")}, "at least 32 bytes", id="short-oct"),
        pytest.param(
            {"kty": "oct", "k": b64(SECRET.encode()), "use": "enc"}, "not a signing JWK", id="use-enc"
        ),
        pytest.param(
            {"kty": "oct", "k": b64(SECRET.encode()), "kid": 7}, "kid that is not a string", id="kid-int"
        ),
        pytest.param({"kty": "oct", "k": b64(SECRET.encode()), "alg": "RS256"}, "key 0 of", id="oct-as-rsa"),
        pytest.param("not an object", "not a signing JWK", id="string"),
    ],
)
def test_bad_jwks_entries(tmp_path, entry, message):
    path = write_jwks(tmp_path, entry)
    with pytest.raises(ConfigError, match=r"^jwt_jwks_file: ") as info:
        load(jwt_algorithm="HS256", jwt_secret=SECRET, jwt_jwks_file=path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_empty_jwks_file(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text('{"keys": []}')
    with pytest.raises(ConfigError, match=r"jwt_jwks_file: .* is not a JWK Set with keys"):
        load(jwt_jwks_file=str(path))


def test_two_different_keys_with_one_kid(keys, tmp_path):
    path = write_jwks(tmp_path, private_jwk(keys.rsa, kid="k"), private_jwk(keys.rsa_old, kid="k"))
    with pytest.raises(ConfigError, match="two different keys have kid 'k'"):
        load(jwt_jwks_file=path)


def test_guard_without_any_key():
    with pytest.raises(ConfigError, match="needs at least one key to verify with"):
        load_keys(Settings.from_config(BASE), signing=False)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param({"issuer": ""}, "issuer: required with token_format = jwt", id="no-issuer"),
        pytest.param({"audience": ""}, "audience: required with token_format = jwt", id="no-audience"),
        pytest.param({"jwt_algorithm": "HS512"}, "jwt_algorithm: expected one of", id="alg"),
        pytest.param({"jwt_leeway": "301"}, "jwt_leeway: expected a whole number from 0 to 300", id="leeway"),
        pytest.param({"jwt_leeway": "-1"}, "jwt_leeway: expected a whole number", id="leeway-negative"),
        pytest.param({"jwt_cache_size": "many"}, "jwt_cache_size: expected a whole number", id="cache"),
        pytest.param(
            {"jwt_extra_claim": "scope"}, "jwt_extra_claim: expected a claim name other than", id="claim"
        ),
        pytest.param(
            {"jwt_check_revocation": "sure"}, "jwt_check_revocation: expected true or false", id="bool"
        ),
    ],
)
def test_jwt_settings_errors(config, message):
    with pytest.raises(ConfigError) as info:
        Settings.from_config({**BASE, **config})
    assert message in str(info.value)


def test_secret_is_kept_out_of_repr():
    settings = Settings.from_config({**BASE, "jwt_secret": SECRET})
    assert SECRET not in repr(settings)
