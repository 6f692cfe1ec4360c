"""The README as a new user follows it.

Its curl examples run, as written, against the shipped demo served for real
(``oauth-middleware serve`` on a free port, a copy of ``examples/``): each
command goes to ``bash``, and its answer is compared with the output the
README shows under it. Shortened values in that output (``"kJ3…"``) are
placeholders: they are bound to what the server really answered and replaced
in the commands that follow, as a reader would paste them. The step the
README leaves to a browser (sign in, approve) is done with ``requests``.

Also: the README renders without a docutils warning, its "Clients as code"
snippet loads, and the LICENSE is the one ``setup.cfg`` names.
"""

from __future__ import annotations

import configparser
import contextlib
import html.parser
import json
import os
import pathlib
import re
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urljoin, urlsplit

import docutils.core
import requests
from conftest import free_port
from test_serve import cli, running

from oauth_middleware.clients import load_clients_file
from oauth_middleware.models import digest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.rst"
#: Where the README's examples expect the demo, and the JWT example's resource server.
DEMO, RESOURCE = "127.0.0.1:8080", "127.0.0.1:8081"
#: A command line: a curl call, a shell variable set from a command, or an echo.
_COMMAND = re.compile(r"(curl |[A-Z_]+=\$\(|echo )")
#: Members whose value changes with the clock: only their type is compared.
_CLOCK = frozenset({"exp", "expires_at", "iat"})


@dataclass
class Step:
    """One command of a literal block and the output the README shows for it."""

    command: str
    expected: list[str] = field(default_factory=list)


def literal_blocks(text: str) -> list[str]:
    """The literal blocks of a reStructuredText document (after a ``::`` line), dedented."""
    lines = text.splitlines()
    blocks = []
    for index, line in enumerate(lines):
        if not line.rstrip().endswith("::") or line.lstrip().startswith(".."):
            continue
        indent = len(line) - len(line.lstrip())
        body = []
        for following in lines[index + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        blocks.append(textwrap.dedent("\n".join(body)).strip("\n"))
    return blocks


def steps(block: str) -> list[Step]:
    """The commands of a block, each with the output lines shown under it.

    A command goes on over lines ending in a backslash and over indented lines;
    the lines after it up to a blank line or the next command are its output.
    Lines before the first command (an ini line, say) are not run.
    """
    found: list[Step] = []
    in_command = False
    for line in block.splitlines():
        if _COMMAND.match(line):
            found.append(Step(line))
            in_command = True
        elif not line.strip():
            in_command = False
            if found and found[-1].expected:
                found[-1].expected.append("")
        elif found and in_command and (found[-1].command.endswith("\\") or line.startswith(" ")):
            found[-1].command += "\n" + line
        elif found:
            in_command = False
            found[-1].expected.append(line)
    for step in found:
        step.command = re.sub(r"\s+#.*$", "", step.command, flags=re.MULTILINE)
        step.expected = "\n".join(step.expected).split("\n\n")[0].splitlines()
    return found


def example_blocks() -> list[str]:
    """Every literal block of the README with a command to run against a server of the examples."""
    blocks = literal_blocks(README.read_text(encoding="utf-8"))
    return [block for block in blocks if DEMO in block and steps(block)]


class Forms(html.parser.HTMLParser):
    """The action and hidden fields of the first form of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form" and self.action is None:
            self.action = values.get("action", "")
        elif tag == "input" and values.get("type") == "hidden":
            self.fields[values["name"]] = values.get("value", "")


def post_form(session: requests.Session, page: requests.Response, **fields: str) -> requests.Response:
    """Submit the page's form with its hidden fields and ``fields``; the redirect is not followed."""
    form = Forms()
    form.feed(page.text)
    assert form.action is not None, page.text
    answer = session.post(
        urljoin(page.url, form.action), data={**form.fields, **fields}, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 303, answer.text
    return answer


def sign_in_and_approve(url: str, username: str, password: str) -> str:
    """What the README asks of the reader's browser: sign in, approve; the code it lands with."""
    session = requests.Session()
    login = session.get(url, timeout=10)
    assert login.status_code == 200, login.text
    consent = session.get(
        urljoin(url, post_form(session, login, username=username, password=password).headers["Location"]),
        timeout=10,
    )
    assert consent.status_code == 200, consent.text
    location = post_form(session, consent, decision="approve").headers["Location"]
    params = parse_qs(urlsplit(location).query)
    assert params["state"] == ["xyz"], location
    return params["code"][0]


def approve_device(url: str, username: str, password: str) -> None:
    """The device walkthrough's browser: the user-code page filled in, sign in, approve."""
    session = requests.Session()
    login = session.get(url, timeout=10)
    assert login.status_code == 200, login.text
    consent = session.get(
        urljoin(url, post_form(session, login, username=username, password=password).headers["Location"]),
        timeout=10,
    )
    assert consent.status_code == 200, consent.text
    form = Forms()
    form.feed(consent.text)
    assert form.action is not None
    done = session.post(urljoin(url, form.action), data={**form.fields, "decision": "approve"}, timeout=10)
    assert done.status_code == 200 and "Device connected" in done.text, done.text


class Reader:
    """Runs README commands in ``bash`` as a reader would, carrying what earlier steps gave.

    :param cwd: where the commands run.
    :param ports: README host:port -> the host:port really served.
    """

    def __init__(self, cwd: pathlib.Path, ports: dict[str, str]) -> None:
        self.cwd = cwd
        self.ports = ports
        #: placeholder as printed in the README -> the value really received.
        self.values: dict[str, str] = {}
        self.env = {**os.environ}
        self.ran = 0

    def command_line(self, command: str) -> str:
        """The command with the served ports and every value bound so far."""
        for written, served in self.ports.items():
            command = command.replace(written, served)
        for placeholder, value in self.values.items():
            command = re.sub(rf"(?<![\w…]){re.escape(placeholder)}(?![\w…])", value, command)
        return command

    def run(self, step: Step) -> str:
        """Run one step; check its output against the README's; return the output."""
        command = self.command_line(step.command)
        assignment = re.match(r"([A-Z_]+)=\$\(", command)
        script = f'{command}\nprintf %s "${assignment[1]}"' if assignment else command
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        self.ran += 1
        if assignment:
            self.env[assignment[1]] = done.stdout
        else:
            self.compare(command, step.expected, done.stdout)
        return done.stdout

    def compare(self, command: str, expected: list[str], output: str) -> None:
        """Compare ``output`` with what the README shows; bind the placeholders it holds."""
        if not expected:
            # The README shows nothing: a JSON answer must at least not be an error.
            if output.lstrip().startswith("{"):
                assert "error" not in json.loads(output), f"{command}\n{output}"
            return
        if expected[0].startswith("HTTP/"):
            head = output.replace("\r\n", "\n").split("\n\n")[0].splitlines()
            assert head[0] == expected[0], f"{command}\n{output}"
            headers = [line.lower() for line in head[1:]]
            for line in expected[1:]:
                assert line.lower() in headers, f"{command}: no {line!r} in\n{output}"
        elif expected[0].startswith("{"):
            self.compare_json(command, json.loads(" ".join(expected)), json.loads(output))
        else:
            assert output.strip() == "\n".join(expected), f"{command}\n{output}"

    def compare_json(self, command: str, expected: dict[str, object], actual: dict[str, object]) -> None:
        assert sorted(actual) == sorted(expected), f"{command}\n{actual}"
        for key, shown in expected.items():
            if isinstance(shown, str) and shown.endswith("…"):
                assert isinstance(actual[key], str), (command, key, actual)
                self.values[shown] = str(actual[key])
            elif key in _CLOCK:
                assert isinstance(actual[key], int), (command, key, actual)
            else:
                assert actual[key] == shown, (command, key, actual)


def copy_examples(directory: pathlib.Path, *names: str) -> pathlib.Path:
    """Copy files of ``examples/`` into ``directory/examples``; return that folder."""
    examples = directory / "examples"
    examples.mkdir()
    for name in names:
        shutil.copy(ROOT / "examples" / name, examples / name)
    return examples


def test_curl_examples_run_against_the_demo(tmp_path: pathlib.Path) -> None:
    examples = copy_examples(tmp_path, "demo.ini", "demo_clients.ini")
    port = free_port()
    reader = Reader(tmp_path, {DEMO: f"127.0.0.1:{port}"})
    blocks = [block for block in example_blocks() if RESOURCE not in block]
    with running(
        cli("serve", str(examples / "demo.ini"), "--port", str(port)),
        f"http://127.0.0.1:{port}",
        tmp_path / "serve.log",
    ):
        for block in blocks:
            for step in steps(block):
                output = reader.run(step)
                if step.command.startswith('echo "http') and "/oauth/device?" in output:
                    # The device walkthrough: "opens verification_uri_complete, signs in as alice and approves."
                    approve_device(output.strip(), "alice", "alice-password")
                elif step.command.startswith('echo "http'):
                    # "Open the printed URL in a browser, sign in as alice and approve."
                    reader.values["CODE"] = sign_in_and_approve(output.strip(), "alice", "alice-password")
    # Every curl command of those blocks ran (none was skipped by the parser).
    assert reader.ran >= sum(block.count("curl ") for block in blocks) >= 10
    assert {"kJ3…", "alrb…", "do5k…", "CODE", "Gq8…", "Dv5…"} <= set(reader.values)


def test_jwt_resource_server_example_runs(tmp_path: pathlib.Path) -> None:
    (block,) = [block for block in example_blocks() if RESOURCE in block]
    examples = copy_examples(tmp_path, "auth_server_jwt.ini", "resource_server_jwt.ini", "demo_clients.ini")
    auth, resource = free_port(), free_port()
    served = {DEMO: f"127.0.0.1:{auth}", RESOURCE: f"127.0.0.1:{resource}"}
    ini = examples / "resource_server_jwt.ini"
    ini.write_text(ini.read_text().replace(f"jwks_url = http://{DEMO}", f"jwks_url = http://{served[DEMO]}"))
    reader = Reader(tmp_path, served)
    lines = block.splitlines()
    # The set-up lines as written (keys generate), then the two servers as the README starts them.
    for line in lines:
        if line.startswith(("mkdir ", "oauth-middleware keys ")):
            reader.run(Step(line.split("  #")[0]))
    assert (examples / "keys" / "auth-server.pem").exists()
    serves = [re.match(r"oauth-middleware serve (\S+)", line) for line in lines]
    configs = [match[1] for match in serves if match]
    assert configs == ["examples/auth_server_jwt.ini", "examples/resource_server_jwt.ini"]
    with serving_all(tmp_path, configs, [auth, resource]):
        outputs = [reader.run(step) for step in steps(block)]
    assert len(outputs) == 2
    assert json.loads(outputs[-1])["client_id"] == "demo-service"


@contextlib.contextmanager
def serving_all(cwd: pathlib.Path, configs: list[str], ports: list[int]) -> Iterator[None]:
    """Serve each config on its port, in order (the resource server fetches its keys at start-up)."""
    with contextlib.ExitStack() as stack:
        for config, port in zip(configs, ports, strict=True):
            argv = cli("serve", str(cwd / config), "--port", str(port))
            stack.enter_context(running(argv, f"http://127.0.0.1:{port}", cwd / f"{port}.log"))
        yield


def test_steps_split_commands_from_their_output() -> None:
    block = textwrap.dedent(
        """\
        setting = value

        curl -s -u a:b \\
             http://127.0.0.1:8080/x
        {"a":"b…",
         "c":1}
        echo "done"  # a comment
        X=$(python3 -c 'print(
            1)')
        """
    )
    assert steps(block) == [
        Step("curl -s -u a:b \\\n     http://127.0.0.1:8080/x", ['{"a":"b…",', ' "c":1}']),
        Step('echo "done"'),
        Step("X=$(python3 -c 'print(\n    1)')"),
    ]


def test_clients_as_code_snippet_loads(tmp_path: pathlib.Path) -> None:
    # Regression (issue 10, item 18): an inline "; comment" became part of secret_hash.
    text = README.read_text(encoding="utf-8")
    section = text.split("Clients as code\n~~~~~~~~~~~~~~~\n", 1)[1]
    (snippet,) = [block for block in literal_blocks(section)[:1] if "[client:reports]" in block]
    path = tmp_path / "clients.ini"
    path.write_text(snippet.replace("3b1f…", digest("a-secret-of-the-reports-job")))
    (client,) = load_clients_file(str(path))
    assert (client.client_id, client.grant_types, client.scopes, client.name) == (
        "reports",
        ("client_credentials",),
        ("read",),
        "Nightly reports",
    )


def test_readme_renders_without_warnings() -> None:
    docutils.core.publish_string(
        README.read_text(encoding="utf-8"),
        writer="html",
        settings_overrides={"halt_level": 2, "report_level": 2, "output_encoding": "unicode"},
    )


def test_license_matches_setup_cfg() -> None:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert setup["metadata"]["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n\nCopyright (c) 2026 the oauth-middleware authors\n")
