"""Client attributes (issue 18 item 4): ``--meta``, ``meta.NAME`` in a clients_file, ``--where``,
``find_clients``, and the consent template."""

from __future__ import annotations

import pathlib

import pytest
import webtest
from conftest import register
from oauth_flows import NATIVE_ID, code_request, flow_middleware, login

from oauth_middleware.cli import main
from oauth_middleware.demo import DemoApp
from oauth_middleware.errors import ConfigError
from oauth_middleware.middleware import OAuth2Middleware


@pytest.fixture
def config(tmp_path: pathlib.Path) -> str:
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = egg:oauth-middleware#demo\nfilter-with = oauth2\n\n"
        "[filter:oauth2]\nuse = egg:oauth-middleware#oauth2\n"
        "store = sqlite:///%(here)s/oauth.db\nscopes = read write\n"
    )
    return str(ini)


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def add(capsys, config, client_id, *meta):
    args = ["client", "add", config, "--client-id", client_id, "--grant", "client_credentials"]
    for item in meta:
        args += ["--meta", item]
    return run(capsys, *args)


def test_meta_is_stored_shown_and_found_by_where(capsys, config):
    assert add(capsys, config, "a", "tenant=acme", "description=Reports <beta>")[0] == 0
    assert add(capsys, config, "b", "tenant=acme", "tier=gold")[0] == 0
    assert add(capsys, config, "c", "tenant=other")[0] == 0
    status, out, _ = run(capsys, "client", "list", config, "--where", "tenant=acme")
    assert status == 0
    assert [line.split("\t")[0] for line in out.splitlines()] == ["a", "b"]
    assert "\tmeta.description=Reports <beta>" in out
    status, out, _ = run(capsys, "client", "list", config, "--where", "tenant=acme", "--where", "tier=gold")
    assert [line.split("\t")[0] for line in out.splitlines()] == ["b"]
    status, out, _ = run(capsys, "client", "list", config, "--where", "tenant=nobody")
    assert (status, out) == (0, "")


def test_add_prints_the_attributes(capsys, config):
    status, out, _ = add(capsys, config, "a", "logo_uri=https://a.example/logo.png")
    assert status == 0
    assert "meta.logo_uri: https://a.example/logo.png" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["add", "--meta", "tenant"], "--meta: expected key=value, got 'tenant'", id="no-equals"),
        pytest.param(["add", "--meta", "1x=y"], "--meta: attribute name must be", id="bad-name"),
        pytest.param(["add", "--meta", "a=1", "--meta", "a=2"], "--meta: a is given twice", id="twice"),
        pytest.param(["add", "--meta", "a=x\x01y"], "without control characters", id="control-char"),
        pytest.param(["list", "--where", "tenant"], "--where: expected key=value", id="where-no-equals"),
    ],
)
def test_bad_attributes_are_one_line_errors(capsys, config, args, message):
    action, *rest = args
    argv = ["client", action, config, *rest]
    if action == "add":
        argv += ["--client-id", "a", "--grant", "client_credentials"]
    status, _, err = run(capsys, *argv)
    assert status == 2
    assert message in err
    assert err.count("\n") == 1


def test_clients_file_meta_keys_and_the_python_api(tmp_path):
    path = tmp_path / "clients.ini"
    path.write_text(
        "[client:a]\npublic = true\nmeta.tenant = acme\nmeta.description = A\n"
        "[client:b]\npublic = true\nmeta.tenant = other\n"
    )
    middleware = OAuth2Middleware(
        DemoApp(), issuer="http://localhost", store="memory://", clients_file=str(path)
    )
    assert [c.client_id for c in middleware.find_clients(tenant="acme")] == ["a"]
    assert middleware.find_clients(tenant="acme")[0].meta == {"tenant": "acme", "description": "A"}
    assert [c.client_id for c in middleware.find_clients()] == ["a", "b"]
    assert middleware.find_clients(tenant="acme", description="B") == []


def test_clients_file_bad_attribute_names_the_section(tmp_path):
    path = tmp_path / "clients.ini"
    path.write_text("[client:a]\npublic = true\nmeta.bad-name = x\n")
    with pytest.raises(ConfigError, match=r"clients_file: \[client:a\] attribute name must be"):
        OAuth2Middleware(DemoApp(), issuer="http://localhost", store="memory://", clients_file=str(path))


def test_consent_template_shows_attributes_escaped(make_middleware, tmp_path):
    template = tmp_path / "consent.html"
    template.write_text(
        "<html><body><p id='d'>$meta_description</p><p id='t'>[$meta_tagline]</p>"
        "<form method='post' action='$action_url'>$hidden_fields"
        "<button name='decision' value='approve'>Yes</button></form></body></html>"
    )
    middleware = flow_middleware(make_middleware, consent_template=str(template))
    client = middleware.server.repository.get_client(NATIVE_ID)
    register(
        middleware,
        NATIVE_ID,
        None,
        redirect_uris=list(client.redirect_uris),
        grant_types=list(client.grant_types),
        scopes=list(client.scopes),
        meta={"description": '<script>alert("x")</script> & co'},
    )
    page = login(webtest.TestApp(middleware), code_request())
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in page.text
    assert "<script>" not in page.text
    # An attribute the client does not have shows as nothing.
    assert "<p id='t'>[]</p>" in page.text


def test_builtin_consent_page_shows_the_description(make_middleware):
    middleware = flow_middleware(make_middleware)
    client = middleware.server.repository.get_client(NATIVE_ID)
    register(
        middleware,
        NATIVE_ID,
        None,
        redirect_uris=list(client.redirect_uris),
        grant_types=list(client.grant_types),
        scopes=list(client.scopes),
        meta={"description": "Reads <b>your</b> calendar"},
    )
    page = login(webtest.TestApp(middleware), code_request())
    assert "Reads &lt;b&gt;your&lt;/b&gt; calendar" in page.text
    assert "$meta_" not in page.text
