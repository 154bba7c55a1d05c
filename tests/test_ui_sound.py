"""Outcome tones and voice prompts, played through SDL's dummy audio driver."""

from __future__ import annotations

import wave

import numpy as np
import pygame
import pytest

from kiosk.domain.model import Outcome
from kiosk.ui.sound import RATE, TONES, Sound, synthesise, voice_dir


def dominant_frequencies(samples: np.ndarray, rate: int = RATE) -> set[int]:
    """Frequencies (rounded to 10 Hz) carrying at least a fifth of the peak energy."""
    spectrum = np.abs(np.fft.rfft(samples.astype(float)))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    strong = freqs[spectrum > spectrum.max() / 5]
    return {int(round(f, -1)) for f in strong}


def test_the_three_tones_differ_in_pitch_and_length():
    sounds = {o: synthesise(TONES[o]) for o in Outcome}
    lengths = {o: len(s) / RATE for o, s in sounds.items()}
    assert lengths[Outcome.PASS] < lengths[Outcome.CHECK] < lengths[Outcome.STOP]
    assert {880, 1320} <= dominant_frequencies(sounds[Outcome.PASS])
    assert 660 in dominant_frequencies(sounds[Outcome.CHECK])
    assert dominant_frequencies(sounds[Outcome.STOP]) <= {320, 330, 340}
    for s in sounds.values():
        assert s.dtype == np.int16 and abs(int(s[0])) < 200  # ramps: no click at the start


def test_voice_prompts_exist_for_every_outcome_and_language():
    for language in ("vi", "en"):
        for outcome in Outcome:
            path = voice_dir() / language / f"{outcome.value}.wav"
            with wave.open(str(path)) as w:
                seconds = w.getnframes() / w.getframerate()
                assert w.getnchannels() == 1 and 0.3 < seconds < 3.0, path


def test_sound_plays_tones_and_prompts_on_the_dummy_audio_device():
    with Sound(enabled=True, voice=True, voice_dir=voice_dir()) as sound:
        if not sound.available:
            pytest.skip("SDL could not open even the dummy audio driver here")
        assert len(sound._voice) == 6
        sound.play(Outcome.STOP, "vi")
        assert pygame.mixer.get_busy()
        sound.close()
        sound.close()  # idempotent
    assert not pygame.mixer.get_init()


def test_disabled_sound_is_silent_and_harmless():
    sound = Sound(enabled=False)
    sound.play(Outcome.PASS)
    assert not sound.available
    sound.close()


def test_the_spoken_word_can_be_left_out():
    """A code that is not a person's keeps its tone but must not say "wait for check"."""
    def queued() -> int:
        return sum(pygame.mixer.Channel(i).get_queue() is not None
                   for i in range(pygame.mixer.get_num_channels()))

    with Sound(enabled=True, voice=True, voice_dir=voice_dir()) as sound:
        if not sound.available:
            pytest.skip("SDL could not open even the dummy audio driver here")
        sound.play(Outcome.CHECK, "vi", voice=False)
        assert pygame.mixer.get_busy() and queued() == 0
        pygame.mixer.stop()
        sound.play(Outcome.CHECK, "vi")
        assert queued() == 1
