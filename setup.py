"""Packaging for checkpoint-kiosk: a QR check-in appliance for Raspberry Pi."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def read_version() -> str:
    for line in (HERE / "kiosk" / "__init__.py").read_text(encoding="utf-8").splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip('"')
    raise RuntimeError("kiosk/__init__.py has no __version__ line")


setup(
    name="checkpoint-kiosk",
    version=read_version(),
    description="QR check-in kiosk for quarantine checkpoints (Raspberry Pi)",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    # kiosk.testing (test-signing keys, the demo's samples) never ships to a kiosk: the demo
    # and the tests run from a checkout (systemd/install.sh --dev, an editable install).
    packages=find_packages(include=["kiosk*", "hardware*", "offline_queue*", "images*"],
                           exclude=["kiosk.testing", "kiosk.testing.*"]),
    # images/ is a package only so that its artwork travels inside the wheel and is
    # found with importlib.resources wherever the kiosk is installed.
    package_data={
        "images": ["*.png", "*.svg", "LICENSES", "fonts/*", "voice/*/*.wav"],
        # Only the compiled catalogues: the kiosk reads them with the standard library's
        # gettext; the .po files are for translators (python -m kiosk.ui.i18n, docs/ui.md).
        "kiosk": ["locale/*/LC_MESSAGES/*.mo", "*.toml",
                  # The official EU DCC JSON schemas, one per version (their README, LICENSE).
                  "domain/credentials/eu_dcc_schemas/*"],
        "offline_queue": ["*.sql", "*.yaml", "central/dashboard/templates/*.html"],
    },
    install_requires=[
        # The watchlist's memory-hard hash (Argon2id, RFC 9106): docs/privacy.md.
        "argon2-cffi>=21.2",
        # EU DCC verification: CBOR/COSE decoding and the signature primitives.
        "cbor2>=5.4",
        "click>=8.1",
        "cryptography>=42",
        # The EU DCC JSON schemas compiled to Python (docs/credentials.md has the figures).
        "fastjsonschema>=2.16",
        "gpiozero>=2.0",
        "numpy>=1.24",
        "pillow>=9.4",
        "platformdirs>=3",
        "pygame>=2.1",
        # The dedicated 2D scanner: USB COM (CDC-ACM) mode, and keyboard mode through the
        # Linux input layer (evdev exists only there; the kiosk is a Linux appliance).
        "pyserial>=3.5",
        "evdev>=1.6; sys_platform == 'linux'",
        "pyzbar>=0.1.9",
        "requests>=2.28",
        "segno>=1.5",
        "sqlite-utils>=4.0",
        "zxing-cpp>=2.2",
    ],
    extras_require={
        # The reference central platform (checkpoint-kiosk central, and the demo's local
        # one): a kiosk never serves HTTP, so the appliance does not install these.
        # psycopg (binary wheel: no libpq build) when the central's --db is a postgresql://
        # URL, the province's database; SQLite needs nothing more (docs/central.md).
        "central": ["flask>=3.0", "waitress>=3.0", "psycopg[binary]>=3.1"],
        # A USB webcam and video-file replay go through OpenCV's capture layer.
        "v4l2": ["opencv-python-headless>=4.6"],
        # systemd-python builds against libsystemd-dev; the kiosk works without it.
        "systemd": ["systemd-python>=234"],
        "test": [
            # The translator's workflow (python -m kiosk.ui.i18n update|compile) and the
            # catalogue tests; the kiosk reads the committed .mo files without it.
            "babel>=2.12",
            "hypothesis>=6",
            # tests/test_architecture.py: the layer contracts in pyproject.toml.
            "import-linter>=2.1",
            # tests/test_dcc_schema.py: the reference draft 2020-12 validator, the oracle the
            # kiosk's compiled schemas must agree with.
            "jsonschema>=4.18",
            # tests/test_architecture.py: mypy in basic mode ([tool.mypy] in pyproject.toml),
            # with the stubs of the one untyped library whose calls we make the most of.
            "mypy>=1.10",
            "types-requests>=2.28",
            "types-pyserial>=3.5",
            # tests/test_api_contract.py checks docs/api.yaml and both sides against it.
            "openapi-spec-validator>=0.7",
            "pyyaml>=6",
            # bench/framegen.py draws the benchmark's frames; a short run is in the suite.
            "opencv-python-headless>=4.6",
            "pytest>=7",
            "pytest-timeout>=2",
            "psutil>=5",
            "ruff>=0.5",
            # tests/test_dashboard_browser.py drives headless Chromium (Debian's chromium
            # and chromium-driver, installed by systemd/install.sh --dev).
            "selenium>=4.10",
            # tests/test_packaging.py builds the wheel offline (no build isolation).
            "wheel>=0.40",
        ],
    },
    entry_points={"console_scripts": ["checkpoint-kiosk = kiosk.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Operating System :: POSIX :: Linux",
        "Environment :: X11 Applications",
    ],
)
