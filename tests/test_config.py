"""Configuration: the starter file works as written, and every mistake names its key."""

import subprocess
import sys

import pytest

from service.config import ConfigError, ImapSettings, MaildirSettings, load, write_starter
from service.reply_keys import office_secret

ENV = {"SECRETARY_REPLY_KEY": "s3cret", "SECRETARY_IMAP_PASSWORD": "imap-pw"}


def test_the_starter_configuration_loads(tmp_path):
    written = write_starter(tmp_path, "สพป.ทดสอบ", "meeting@office.test", "clerk@office.test")
    assert all(flag for _, flag in written)
    settings = load(tmp_path / "secretary.toml", ENV)
    assert settings.office.mailbox == "meeting@office.test"
    assert isinstance(settings.source, MaildirSettings) and settings.source.path == tmp_path / "mailbox"
    secret_file = tmp_path / "reply-key.secret"
    secret = secret_file.read_text().strip()
    assert len(secret) == 64 and settings.reply_key_secret == office_secret(secret.encode(), "meeting@office.test")
    assert secret_file.stat().st_mode & 0o077 == 0, "only the service's user may read the secret"
    assert not any(flag for _, flag in write_starter(tmp_path, "x", "a@b.cd", "c@d.ef")), "init never overwrites"


def _config(tmp_path, body):
    path = tmp_path / "secretary.toml"
    path.write_text(
        '[office]\nname = "สพป.ทดสอบ"\nmailbox = "meeting@office.test"\nclerk = "clerk@office.test"\n'
        '[store]\npath = "store"\n[sender]\nkind = "file"\npath = "out"\n' + body,
        encoding="utf-8",
    )
    return path


def test_imap_settings_take_the_password_from_the_environment(tmp_path):
    path = _config(tmp_path, '[source]\nkind = "imap"\nhost = "imap.office.test"\nusername = "meeting"\nsecurity = "starttls"\n')
    source = load(path, ENV).source
    assert isinstance(source, ImapSettings)
    assert (source.port, source.password) == (143, "imap-pw")


@pytest.mark.parametrize(
    "body, env, message",
    [
        ('[source]\nkind = "pop3"\n', ENV, r"\[source\] kind: must be one of 'imap', 'maildir', 'exchange', 'graph', got 'pop3'"),
        ('[source]\nkind = "imap"\nhost = "h"\nusername = "u"\nport = "993"\n', ENV, r"\[source\] port: must be a port number, got '993'"),
        ('[source]\nkind = "imap"\nhost = "h"\nusername = "u"\nport = 99999\n', ENV, r"between 1 and 65535"),
        ('[source]\nkind = "imap"\nhost = "h"\nusername = "u"\n', {"SECRETARY_REPLY_KEY": "k"}, r"\[source\] password_env: the environment variable SECRETARY_IMAP_PASSWORD is not set"),
        ('[source]\nkind = "maildir"\npath = "m"\n', {}, r"\[security\] reply_key_secret_env: the environment variable SECRETARY_REPLY_KEY"),
        ('[source]\nkind = "maildir"\npath = "m"\n[security]\nreply_key_secret_file = "nope.secret"\n', {}, r"\[security\] reply_key_secret_file: cannot read .*nope.secret"),
        ('[source]\nkind = "imap"\nusername = "u"\n', ENV, r"\[source\] host: missing"),
    ],
)
def test_mistakes_name_the_key(tmp_path, body, env, message):
    with pytest.raises(ConfigError, match=message):
        load(_config(tmp_path, body), env)


def test_a_bad_mailbox_address_and_bad_toml_are_explained(tmp_path):
    path = tmp_path / "secretary.toml"
    path.write_text('[office]\nname = "x"\nmailbox = "meeting"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[office\] mailbox: must be an e-mail address"):
        load(path, ENV)
    path.write_text("[office\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(path, ENV)
    with pytest.raises(ConfigError, match="secretary init"):
        load(tmp_path / "missing.toml", ENV)


def test_the_command_line_shows_the_key_a_mistake_is_in(tmp_path):
    path = _config(tmp_path, '[source]\nkind = "pop3"\n')
    result = subprocess.run([sys.executable, "-m", "service", "-c", str(path), "status"], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", **ENV}, timeout=120)
    assert result.returncode != 0
    assert "[source] kind: must be one of" in result.stdout + result.stderr, "rich must not read [source] as markup"
