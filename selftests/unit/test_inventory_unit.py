"""Offline tests of the inventory: defaults applied, strict one-line errors, secrets only by name."""

import dataclasses
import re
from pathlib import Path

import pytest

from mailaudit.errors import ConfigError
from mailaudit.inventory import Credentials, ServerEntry, credentials, load_inventory, parse_inventory
from mailaudit.redact import redact

FLEET = """\
defaults:
  api_url: "https://{server}/"
  tls_ports: [25, 587, 465]
  tags: [nightly]
  dkim_selectors: [default]
servers:
  mail.example.com:
    domain: example.com
    smtp_user: audit@example.com
    smtp_password_env: MX1_SMTP_PASSWORD
    api_user_env: MX1_API_USER
    api_password_env: MX1_API_PASSWORD
    dkim_selectors: [s1, s2]
    outbound_ips: [192.0.2.25, "2001:db8::25"]
    local_recipient: postmaster@example.com
    tags: [customer-a, nightly]
  MX2.example.org:
    tls_ports: [993]
  mx3.example.net:
"""


def _load(tmp_path, text, **kwargs):
    path = tmp_path / "fleet.yaml"
    path.write_text(text, encoding="utf-8")
    return load_inventory(path, **kwargs)


def test_inventory_applies_defaults_and_keeps_the_files_order(tmp_path):
    """Each server gets the defaults unless it sets the key; tags are united; {server} is expanded."""
    inventory = _load(tmp_path, FLEET)
    assert inventory.names == ("mail.example.com", "MX2.example.org", "mx3.example.net")
    first, second, third = inventory.servers
    assert first == ServerEntry(
        server="mail.example.com", domain="example.com", api_url="https://mail.example.com",
        api_user_env="MX1_API_USER", api_password_env="MX1_API_PASSWORD", smtp_user="audit@example.com",
        smtp_password_env="MX1_SMTP_PASSWORD", dkim_selectors=("s1", "s2"), tls_ports=(25, 587, 465),
        outbound_ips=("192.0.2.25", "2001:db8::25"), local_recipient="postmaster@example.com",
        tags=("nightly", "customer-a"))
    assert second.tls_ports == (993,) and second.dkim_selectors == ("default",)
    assert second.api_url == "https://MX2.example.org" and second.tags == ("nightly",)
    assert third.domain is None and third.smtp_user is None  # the command line's / the suite's default
    assert inventory.entry("mx2.EXAMPLE.org") is second
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.domain = "x.example"


def test_standard_environment_variables_apply_when_none_is_named(tmp_path):
    """Without *_env keys the suite's standard variables are read."""
    entry = _load(tmp_path, FLEET).servers[1]
    assert entry.env_name("smtp_password_env") == "MAILAUDIT_SMTP_PASSWORD"
    assert entry.env_name("api_user_env") == "MAILAUDIT_API_USER"
    assert credentials(entry, env={"MAILAUDIT_API_USER": "admin", "MAILAUDIT_API_PASSWORD": "pw-standard-1"}) == \
        Credentials(smtp_password=None, api_user="admin", api_password="pw-standard-1")
    assert credentials(entry, env={}) == Credentials()


def test_credentials_come_from_the_named_variables_and_are_redacted(tmp_path):
    """Named variables are read, the passwords hidden from repr and removed from any output."""
    entry = _load(tmp_path, FLEET).servers[0]
    env = {"MX1_SMTP_PASSWORD": "smtp-Secret-4711", "MX1_API_USER": "admin", "MX1_API_PASSWORD": "api-Secret-0815",
           "MAILAUDIT_SMTP_PASSWORD": "not-this-one"}
    found = credentials(entry, env)
    assert (found.smtp_password, found.api_user, found.api_password) == ("smtp-Secret-4711", "admin",
                                                                         "api-Secret-0815")
    assert "Secret" not in repr(found)
    assert "Secret" not in redact("AUTH with smtp-Secret-4711, API with api-Secret-0815")


def test_a_named_variable_that_is_not_set_stops_the_run(tmp_path):
    """A variable the inventory names explicitly but the environment lacks is a one-line error."""
    entry = _load(tmp_path, FLEET).servers[0]
    with pytest.raises(ConfigError) as info:
        credentials(entry, env={"MX1_API_USER": "admin", "MX1_API_PASSWORD": "x"})
    assert str(info.value) == ("--inventory: server 'mail.example.com': smtp_password_env names MX1_SMTP_PASSWORD, "
                               "which is not set in the environment")


@pytest.mark.parametrize(("text", "expected"), [
    ("servers: {mail.example.com: {colour: red}}",
     "server 'mail.example.com': unknown key 'colour' (known: domain, api_url,"),
    ("servers: {mail.example.com: {api_password: hunter2}}",
     "server 'mail.example.com': unknown key 'api_password': secrets never go into the inventory"),
    ("servers: {mail.example.com: {tls_ports: [25, 70000]}}",
     "server 'mail.example.com': key 'tls_ports': port 70000 out of range 1-65535"),
    ("servers: {mail.example.com: {tls_ports: [25, true]}}",
     "server 'mail.example.com': key 'tls_ports': port True is true/false, not a number"),
    ("servers: {mail.example.com: {tls_ports: [25, 25]}}", "key 'tls_ports': 25 listed twice"),
    ("servers: {mail.example.com: {tls_ports: []}}", "key 'tls_ports': empty list of ports"),
    ("servers: {mail.example.com: {dkim_selectors: s1}}",
     "key 'dkim_selectors': expected a list of selectors (e.g. [a, b]), got text"),
    ("servers: {mail.example.com: {domain: 'exa mple.com'}}", "server 'mail.example.com': key 'domain': "),
    ("servers: {mail.example.com: {outbound_ips: [192.0.2.300]}}", "key 'outbound_ips': '192.0.2.300' is not an IP"),
    ("servers: {mail.example.com: {local_recipient: postmaster}}", "key 'local_recipient': not an address"),
    ("servers: {mail.example.com: {api_url: 'http://mail.example.com'}}", "key 'api_url': scheme must be https://"),
    ("servers: {mail.example.com: {api_url: 'https://u:p@mail.example.com'}}", "no user or password in the URL"),
    ("servers: {mail.example.com: {tags: ['a b']}}", "key 'tags': tag 'a b' may hold only"),
    ("servers: {mail.example.com: {}, MAIL.example.com: {}}",
     "server 'MAIL.example.com': listed twice (also as 'mail.example.com')"),
    ("servers: {'bad_name!': {}}", "server 'bad_name!': host name label"),
    ("servers: {mail.example.com: [1, 2]}", "server 'mail.example.com': expected a mapping of settings"),
    ("servers: {}", "'servers' must map each server name to its settings (at least one)"),
    ("defaults: {tls_port: [25]}\nservers: {mail.example.com: {}}", "defaults: unknown key 'tls_port'"),
    ("hosts: {}\n", "unknown top-level key 'hosts' (known: defaults, servers)"),
    ("- mail.example.com\n", "expected a mapping with 'servers:'"),
    ("servers: {mail.example.com: &a {domain: example.com}, mx.example.com: *a}", "anchors and aliases"),
])
def test_bad_inventories_are_one_line_naming_entry_and_key(tmp_path, text, expected):
    """Every mistake is a ConfigError of one line that names the file, the entry and the key."""
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    message = str(info.value)
    assert message.startswith(f"--inventory {tmp_path / 'fleet.yaml'}: ")
    assert expected in message, message
    assert "\n" not in message


def test_a_secret_put_where_a_variable_name_belongs_is_never_echoed(tmp_path):
    """A password written into an *_env key is refused without repeating it in the error."""
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "servers: {mail.example.com: {smtp_password_env: 'Tr0ub4dor&3 x'}}")
    assert "key 'smtp_password_env': must name an environment variable" in str(info.value)
    assert "Tr0ub4dor" not in str(info.value)


def test_http_api_urls_only_when_allowed():
    """An http:// API URL is accepted only with allow_http (the --api-allow-http option)."""
    data = {"servers": {"mail.example.com": {"api_url": "http://{server}:8080"}}}
    assert parse_inventory(data, allow_http=True)[0].api_url == "http://mail.example.com:8080"
    with pytest.raises(ConfigError):
        parse_inventory(data)


def test_documented_example_inventory_loads(tmp_path):
    """The inventory shown in docs/NIGHTLY.md is a valid inventory."""
    docs = (Path(__file__).parents[2] / "docs" / "NIGHTLY.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(# /etc/mailaudit/fleet.yaml\n.*?)```", docs, re.S).group(1)
    inventory = _load(tmp_path, example)
    assert inventory.names == ("mail.example.com", "mx2.example.org", "mx3.example.net")
    assert inventory.servers[2].api_url == "https://mx3.example.net"
