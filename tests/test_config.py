import tomllib

import pytest

from kiosk import config
from kiosk.errors import ConfigError


def write(tmp_path, text):
    p = tmp_path / "kiosk.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_file_round_trips_to_the_defaults(tmp_path):
    text = config.defaults_toml()
    tomllib.loads(text)  # valid TOML
    assert config.load(write(tmp_path, text), environ={}) == config.Config()


def test_file_overrides_and_types(tmp_path):
    cfg = config.load(write(tmp_path, """
[camera]
spec = "replay:/tmp/frames,fps=5"
[signals]
gate = 5
gate_pulse_seconds = 2
[policy]
profile = "hospital"
max_test_hours = 48
"""), environ={})
    assert cfg.camera.spec == "replay:/tmp/frames,fps=5"
    assert cfg.signals.gate == 5
    pulse = cfg.signals.gate_pulse_seconds
    assert pulse == 2.0 and isinstance(pulse, float)
    assert cfg.policy == {"profile": "hospital", "max_test_hours": 48}


@pytest.mark.parametrize("text, fragment", [
    ('[camera]\nwidth = "wide"', "camera.width = 'wide' must be a whole number"),
    ('[camera]\nwidht = 3', "unknown key camera.widht"),
    ('[cmaera]\nspec = "x"', "unknown section 'cmaera'"),
    ('[ui]\nlanguage = "fr"', "ui.language = 'fr' is not one of 'vi', 'en'"),
    ('[signals]\nred = 99', "signals.red = 99 is outside 0..27"),
    ('[signals]\nenabled = 1', "signals.enabled = 1 must be true or false"),
    ('[camera\nspec', "not valid TOML"),
    # Checks beyond one key's type: each of these passed 'config check' and then stopped the
    # kiosk at start-up (a traceback for the URL), after provisioning had spent the token.
    ('[camera]\nspec = "picamra2"', "camera spec 'picamra2' is not recognised"),
    ('[sync]\nserver_url = "kiosk.example.vn"', "sync.server_url = 'kiosk.example.vn' is not"),
    ('[policy]\nprofile = "hopsital"', "policy 'hopsital' is neither a profile"),
    ('[policy]\nmax_age = 3', "policy.max_age is not a policy setting"),
    ('[ui]\nofficer_pin = "12"', "ui.officer_pin must be 4 to 8 digits"),
    ('[signals]\nred = 17\ngreen = 17', "signals.green = 17 is the same BCM pin as signals.red"),
    ('[signals]\nconfirm_button = 23', "signals.confirm_button = 23 is the same BCM pin as "
                                        "signals.buzzer"),
])
def test_bad_values_name_key_and_value(tmp_path, text, fragment):
    with pytest.raises(ConfigError) as e:
        config.load(write(tmp_path, text), environ={})
    assert fragment in str(e.value)
    assert "kiosk.toml" in str(e.value)


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.toml", environ={})


def test_environment_overrides(tmp_path):
    cfg = config.load(write(tmp_path, '[ui]\nlanguage = "vi"'),
                      environ={"CHECKPOINT_KIOSK_LANGUAGE": "en",
                               "CHECKPOINT_KIOSK_DB": "/tmp/x.db"})
    assert cfg.ui.language == "en" and cfg.store.path == "/tmp/x.db"
    with pytest.raises(ConfigError, match="CHECKPOINT_KIOSK_LOG_LEVEL"):
        config.load(write(tmp_path, ""), environ={"CHECKPOINT_KIOSK_LOG_LEVEL": "LOUD"})


def test_replace():
    cfg = config.Config().replace(camera={"spec": "replay:x"}, signals={"buzzer": None})
    assert cfg.camera.spec == "replay:x" and cfg.signals.buzzer is None


def test_whole_config_checks_name_the_environment_and_skip_unwired_pins(tmp_path):
    with pytest.raises(ConfigError, match="environment CHECKPOINT_KIOSK_SERVER_URL: sync"):
        config.load(write(tmp_path, ""), environ={"CHECKPOINT_KIOSK_SERVER_URL": "ftp://x"})
    cfg = config.load(write(tmp_path, """
[signals]
enabled = false
red = 17
green = 17
[sync]
server_url = "https://kiosk.example.vn:8443/"
[ui]
officer_pin = "4826"
"""), environ={})
    assert cfg.signals.green == cfg.signals.red   # not driven: nothing to clash
    with pytest.raises(ConfigError) as e:
        config.load(write(tmp_path, '[ui]\nofficer_pin = "12345678901"'), environ={})
    assert "12345678901" not in str(e.value)   # a secret: its length only
