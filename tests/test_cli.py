import subprocess
import sys

from click.testing import CliRunner

from kiosk import __version__
from kiosk.cli import cli


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    names = cli.list_commands(None)
    for name in names:
        cmd = cli.get_command(None, name)
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Example" in (cmd.help or ""), f"'{name}' help has no example"


def test_python_dash_m():
    out = subprocess.run(
        [sys.executable, "-m", "kiosk", "--help"], capture_output=True, text=True, check=True
    )
    assert "checkpoint-kiosk" in out.stdout or "Usage" in out.stdout
