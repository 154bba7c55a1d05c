"""Outcome tones on a speaker, the matching buzzer rhythms, and optional voice prompts.

Tones differ in pitch *and* rhythm (rising pair / three mid beeps / two long low) so they
are told apart by people who cannot see the screen.  The buzzer is the scan loop's
(``hardware.signals``); these play on a speaker when one is present.
Voice prompts are WAV files ``images/voice/<lang>/<outcome>.wav`` speaking the screen's
word for the outcome (from the catalogues), synthesised with eSpeak NG by
``python -m kiosk.ui.sound`` and committed, so the appliance needs no speech engine.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pygame

from kiosk.domain.model import Outcome

log = logging.getLogger(__name__)

RATE = 22050

# (frequency Hz, seconds) steps; frequency 0 is a pause.
TONES: dict[Outcome, tuple[tuple[float, float], ...]] = {
    Outcome.PASS: ((880, 0.12), (0, 0.04), (1320, 0.18)),
    Outcome.CHECK: ((660, 0.15), (0, 0.10), (660, 0.15), (0, 0.10), (660, 0.15)),
    Outcome.STOP: ((330, 0.60), (0, 0.10), (330, 0.60)),
}


def synthesise(steps: tuple[tuple[float, float], ...], rate: int = RATE) -> np.ndarray:
    """16-bit mono samples of ``steps``, each tone with 5 ms ramps so it does not click."""
    parts = []
    for freq, seconds in steps:
        n = int(rate * seconds)
        if freq <= 0:
            parts.append(np.zeros(n))
            continue
        t = np.arange(n) / rate
        wave = np.sin(2 * np.pi * freq * t)
        ramp = min(n // 2, int(rate * 0.005))
        envelope = np.ones(n)
        envelope[:ramp] = np.linspace(0, 1, ramp)
        envelope[n - ramp:] = np.linspace(1, 0, ramp)
        parts.append(wave * envelope)
    return (np.concatenate(parts) * 0.6 * 32767).astype(np.int16)


class Sound:
    """Plays outcome tones (and voice prompts when enabled) if an audio device exists."""

    def __init__(self, *, enabled: bool = True, voice: bool = False,
                 voice_dir: Path | None = None) -> None:
        self._sounds: dict[Outcome, pygame.mixer.Sound] = {}
        self._voice: dict[tuple[str, Outcome], pygame.mixer.Sound] = {}
        self.available = False
        if not enabled:
            return
        try:
            pygame.mixer.init(frequency=RATE, size=-16, channels=1)
        except pygame.error as e:
            # No speaker is normal on a kiosk with only a buzzer.
            log.info("no audio output (%s); outcome tones only on the buzzer", e)
            return
        self.available = True
        freq, _fmt, channels = pygame.mixer.get_init()
        for outcome, steps in TONES.items():
            samples = synthesise(steps, freq)
            if channels > 1:
                samples = np.repeat(samples[:, None], channels, axis=1)
            self._sounds[outcome] = pygame.sndarray.make_sound(samples)
        if voice and voice_dir is not None:
            for wav in sorted(voice_dir.glob("*/*.wav")):
                try:
                    self._voice[(wav.parent.name, Outcome(wav.stem))] = pygame.mixer.Sound(wav)
                except (ValueError, pygame.error) as e:
                    log.warning("voice prompt %s not loaded: %s", wav, e)

    def play(self, outcome: Outcome, language: str = "vi", *, voice: bool = True) -> None:
        """The outcome's tone, then its spoken word when voice prompts are on and ``voice``."""
        if not self.available:
            return
        channel = self._sounds[outcome].play()
        prompt = self._voice.get((language, outcome)) if voice else None
        if prompt is not None and channel is not None:
            channel.queue(prompt)  # after the tone on the same channel, so both are heard

    def close(self) -> None:
        if self.available:
            pygame.mixer.quit()
            self.available = False

    def __enter__(self) -> Sound:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def voice_dir() -> Path:
    from kiosk.ui.artwork import images_dir

    return images_dir() / "voice"


def write_voice(folder: Path | None = None, espeak: str = "espeak-ng") -> list[Path]:
    """Synthesise the outcome prompts for every language with eSpeak NG (a build-time tool)."""
    from kiosk.ui.i18n import Translator
    from kiosk.ui.screens import WORDS

    exe = shutil.which(espeak)
    if exe is None:
        raise FileNotFoundError(f"{espeak!r} is not installed; `apt install espeak-ng`")
    folder = voice_dir() if folder is None else folder
    written = []
    for language in ("vi", "en"):
        t = Translator(language)
        (folder / language).mkdir(parents=True, exist_ok=True)
        for outcome, word in WORDS.items():
            path = folder / language / f"{outcome.value}.wav"
            text = t(word).capitalize()
            subprocess.run([exe, "-v", language, "-s", "140", "-w", str(path), text],
                           check=True, timeout=30)
            written.append(path)
    return written


if __name__ == "__main__":
    for p in write_voice(Path(sys.argv[1]) if len(sys.argv) > 1 else None):
        print(p, file=sys.stderr)
