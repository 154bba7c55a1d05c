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
