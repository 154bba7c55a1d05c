"""Presentation clips: what a 30 fps kiosk camera sees while a person shows a code.

A clip starts when the whole code is first inside the field, still moving in; the hand
brakes to where the person holds it and then holds it with a shaking hand.  Everything
follows from a physical model, in millimetres and seconds, through the optics of
``bench.framegen`` (docs/decoding.md, "Presentation clips"):

* **approach**: position and distance move from where the hand started to where it holds
  the code as a critically damped hand, ``x(t) = x_rest + Δ (1 + t/τ) e^(−t/τ)``; τ 60–150
  ms, peak speed Δ / (e τ) at t = τ; the clip starts 0.5–1.2 τ into the move (the code
  enters the view moving, near its top speed) and it settles within about 0.2–0.6 s;
* **hand shake**: physiological tremor (8–12 Hz, 0.02–0.2 mm peak to peak) on a slow
  sway (0.3–1.5 Hz, 0.5–2.5 mm), in both directions, plus a slow turn of a degree or two;
* **motion blur**: the code's speed in the image during the exposure, along its direction
  of travel.  The exposure is what libcamera's automatic exposure makes of the light
  (``exposure="normal"``, the default: 1/60 s, or 1/30 s in a dim entrance);
  ``exposure="short"`` divides the same light by the "short" profile instead: a shorter
  shutter and more gain, hence more noise (see :func:`divide_exposure`);
* **focus**: a Camera Module 3 (its own lens and sensor) in continuous autofocus (phase
  detection notices the new subject 2–4 frames late, then the lens moves from the room
  behind, 0.6–2 m, to the code with a time constant of 50–120 ms, in dioptres), or a
  Module 2 whose lens was turned to 25 cm; the defocus disk follows from aperture and
  distance;
* **glare**: a phone's glass is a mirror.  The ceiling has a grid of lamps
  (:func:`ceiling_lamps`); the camera sees one in the glass where the line to its mirror
  image crosses the glass (:func:`reflections`), so whether a phone shows a lamp, and where,
  follows from its tilt, and the reflection moves as the phone turns;
* sensor noise is new in every frame; a 1280x720 webcam sends MJPEG.

Kinds: ``card`` (the 11 mm code of a 2024 CCCD through the native-resolution centre
window), ``phone`` (a code on a phone screen: moiré, glare, screen gamma), ``paper`` (a
printed code, sometimes faded, uneven light), and ``no_code`` (a card without a code: text
and a photo, shown the same way).  The same (kind, index, seed) always gives the same clip.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from bench import framegen as fg

FPS = 30.0
CLIP_KINDS = ("card", "phone", "paper", "no_code")
_KINDS_FOR = {
    "card": ("cccd", "cccd", "cccd", "short_vi"),
    "phone": ("hc1", "pc_covid", "short_vi", "venue", "cccd"),
    "paper": ("cccd", "bhyt", "hc1", "venue", "short_vi"),
}


# -- Exposure: how libcamera's AGC divides the light between shutter and gain -----------------
EXPOSURES = ("normal", "short")
# The AeExposureMode profiles of the Raspberry Pi tuning files for the Pi 4's ISP (libcamera,
# src/ipa/rpi/vc4/data/imx219.json and imx708.json, "rpi.agc" channel 0 "exposure_modes"):
# shutter steps in microseconds and analogue gain steps.  The AGC first lengthens the shutter
# to the next step at the current gain, then raises the gain to the next step, and so on
# (``AgcChannel::divideUpExposure``); beyond the last gain step the ISP adds digital gain.
EXPOSURE_MODES: dict[str, dict[str, tuple[tuple[int, ...], tuple[float, ...]]]] = {
    "module2": {   # IMX219
        "normal": ((100, 10000, 30000, 60000, 66666), (1.0, 2.0, 4.0, 6.0, 10.0)),
        "short": ((100, 5000, 10000, 20000, 66666), (1.0, 2.0, 4.0, 6.0, 10.0)),
    },
    "module3": {   # IMX708
        "normal": ((100, 15000, 30000, 60000, 66666), (1.0, 1.0, 2.0, 4.0, 16.0)),
        "short": ((100, 5000, 10000, 20000, 66666), (1.0, 2.0, 4.0, 6.0, 16.0)),
    },
}
# picamera2's video configuration fixes FrameDurationLimits at 33333 us (30 fps): the AGC
# cannot hold the shutter open longer than a frame, whatever the profile's last step says.
MAX_SHUTTER_S = 1 / FPS
# A dim entrance has 2.5 times the noise of a bright one under the normal profile (the
# generator's model since it was written).  Noise is photon shot noise: at the brightness the
# AGC aims for, the photoelectrons a pixel collects fall as the total gain rises, so the noise
# relative to the signal grows as sqrt(gain) -- libcamera's own noise model (rpi.noise: its
# constant term is 0 for both sensors, its slope scales with sqrt(analogue gain)).  The dim
# entrance therefore has 2.5**2 = 6.25 times the gain of the bright one, i.e. 12.5 times less
# light (at twice the shutter).
DIM_NOISE = 2.5


def divide_exposure(total: float, camera: str, mode: str,
                    max_shutter: float = MAX_SHUTTER_S) -> tuple[float, float]:
    """(shutter s, total gain) the AGC of ``camera`` picks in ``mode`` for ``total`` exposure.

    ``total`` is shutter x gain in seconds (how dark the scene is: twice as much for half
    the light).  Stage by stage as libcamera does: the shutter grows to the next step at
    the gain reached so far, then the gain to the next step, until their product is
    ``total``; the shutter never exceeds ``max_shutter`` (the frame duration).  The gain
    returned includes the digital gain beyond the profile's last step.
    """
    steps_us, gains = EXPOSURE_MODES[camera][mode]
    shutter = min(steps_us[0] / 1e6, max_shutter)
    gain = gains[0]
    if shutter * gain < total:
        for stage in range(1, len(gains)):
            step = min(steps_us[stage] / 1e6, max_shutter)
            if step * gain >= total:
                shutter = total / gain
                break
            shutter = step
            if gains[stage] * shutter >= total:
                break
            gain = gains[stage]
    return shutter, total / shutter


def _gain_while_shutter(camera: str, mode: str, shutter: float) -> float:
    """The gain at which the profile lengthens the shutter through ``shutter`` seconds."""
    steps_us, gains = EXPOSURE_MODES[camera][mode]
    gain = gains[0]
    for stage in range(1, len(gains)):
        if steps_us[stage] / 1e6 >= shutter:
            return gain
        gain = gains[stage]
    return gain


def scene_exposure(camera: str, dim: bool) -> float:
    """Total exposure (shutter x gain, s) of the bright or dim entrance for ``camera``.

    Defined by what the normal profile does there, which is the generator's model: a
    1/60 s shutter in the bright entrance (at the gain the profile holds while the shutter
    passes 1/60 s), and in the dim one DIM_NOISE times the noise, hence DIM_NOISE**2 times
    that gain, with the shutter at the frame limit.
    """
    bright_gain = _gain_while_shutter(camera, "normal", 1 / 60)
    if not dim:
        return bright_gain / 60
    return MAX_SHUTTER_S * bright_gain * DIM_NOISE ** 2


@dataclass(frozen=True)
class Clip:
    kind: str
    index: int
    frames: list[np.ndarray]
    payload: bytes | None
    params: dict = field(default_factory=dict)
    # The camera's full-resolution stream, ``detail`` times the frames' size, frame by frame
    # (None: the camera has one stream, or its frames are already at the sensor's own pixels).
    detail: list[np.ndarray] | None = None

    def main(self, i: int) -> np.ndarray | None:
        """The main stream's image beside frame ``i``, or None."""
        return None if self.detail is None else self.detail[i]


def _approach(t: np.ndarray, start: float, rest: float,
              tau: float) -> tuple[np.ndarray, np.ndarray]:
    """Critically damped move from ``start`` to ``rest``: position and speed at times ``t``."""
    e = np.exp(-t / tau)
    d = start - rest
    return rest + d * (1 + t / tau) * e, -d * (t / tau ** 2) * e


def _shake(t: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Hand shake along one axis (mm): tremor on a slow sway; position and speed."""
    pos = np.zeros_like(t)
    vel = np.zeros_like(t)
    for f_lo, f_hi, a_lo, a_hi in ((8.0, 12.0, 0.02, 0.2), (0.3, 1.5, 0.5, 2.5)):
        f = rng.uniform(f_lo, f_hi)
        a = rng.uniform(a_lo, a_hi) / 2           # peak-to-peak -> amplitude
        ph = rng.uniform(0, 2 * np.pi)
        pos += a * np.sin(2 * np.pi * f * t + ph)
        vel += a * 2 * np.pi * f * np.cos(2 * np.pi * f * t + ph)
    return pos, vel


def _blank_card(rng: np.random.Generator, n: int) -> np.ndarray:
    """A card face without a code (0 dark .. 1 light), as big as a code of ``n`` modules."""
    side = n * 8
    ink = np.zeros((side, side), np.uint8)
    for k in range(int(rng.integers(4, 9))):
        txt = "".join(chr(int(rng.integers(65, 91))) for _ in range(int(rng.integers(6, 14))))
        cv2.putText(ink, txt, (4, 20 + k * side // 9), cv2.FONT_HERSHEY_SIMPLEX,
                    float(rng.uniform(0.5, 0.9)), 255, 2, cv2.LINE_AA)
    cv2.ellipse(ink, (side * 3 // 4, side * 3 // 4), (side // 8, side // 6), 0, 0, 360, 160, -1)
    return 1.0 - ink.astype(np.float32) / 255 * 0.85


GLARES = ("lamps", "fixed")
# How the Module 3's autofocus is set up: "kiosk" is what hardware/camera.py asks of libcamera
# (AfRange Macro, AfSpeed Fast); "libcamera" its defaults (AfRange Normal, AfSpeed Normal),
# the model before 2026-12-06.  From the Raspberry Pi tuning file for the IMX708
# (src/ipa/rpi/vc4/data/imx708.json, "rpi.af"): the macro range is 3-15 dioptres; the
# "normal" speed has loop gain -0.016 and slews at most 1.5 D a frame, the "fast" one -0.02
# and 2 D.  A proportional loop's time constant goes as 1 / gain.
AF_SETUPS = ("kiosk", "libcamera")
AF_MACRO_DIOPTRES = (3.0, 15.0)
AF_NORMAL_GAIN, AF_FAST_GAIN = 0.016, 0.020
AF_FAST_SLEW_DIOPTRES = 2.0
CAMERAS = ("mix", "module3", "module2")
# Light on the codes: "room" (the default), the entrance's own light only; "kiosk", a lamp on
# the kiosk (KIOSK_LAMP) lights where codes are held: a card or a sheet is then as well lit
# in a dim entrance as in a bright one (the AGC exposes it as there: 1/60 s at that gain),
# and a phone's glass, whose code gives its own light, reflects the lamp as it does the
# ceiling's (:func:`reflections`).
LIGHTS = ("room", "kiosk")


@dataclass(frozen=True)
class Lamp:
    """A ceiling lamp, in mm in the camera's frame (x right, y down, z along the lens)."""

    x: float
    y: float
    z: float
    radius: float


# The kiosk's lamp: a diffuse LED panel 50 mm across, 120 mm above the lens and 20 mm in front
# of it, aimed at the reading zone.  Above and not around the lens, so that a phone held
# face-on reflects it near the top of its glass, not on its code (docs/decoding.md).
KIOSK_LAMP = Lamp(0.0, -120.0, 20.0, 25.0)


def ceiling_lamps(rng: np.random.Generator) -> list[Lamp]:
    """The lamps of a ceiling around the kiosk: a grid, as offices and halls are lit.

    The camera stands 1.1-1.5 m above the floor under a ceiling of 2.6-3.2 m; the lamps are
    1.5-3 m apart, from downlights (5 cm) to panels (30 cm across half of it), and the grid
    lies anywhere: within 5 m of the camera, behind it as well as in front.
    """
    above = rng.uniform(2600.0, 3200.0) - rng.uniform(1100.0, 1500.0)
    pitch = rng.uniform(1500.0, 3000.0)
    radius = rng.uniform(50.0, 300.0)
    ox, oz = rng.uniform(0, pitch, 2)
    steps = np.arange(-5000.0, 5000.0 + 1, pitch)
    return [Lamp(float(ox + gx), -above, float(oz + gz), radius) for gx in steps for gz in steps]


def glass_normal(tilt: float, tilt_axis: float) -> np.ndarray:
    """Unit normal of a card or phone facing the camera, tilted as ``framegen._place`` draws it.

    ``_place`` turns the face about the image-plane axis at ``tilt_axis`` so that the side
    across that axis recedes; a face that recedes on one side faces towards that side.
    """
    across = np.array([-np.sin(tilt_axis), np.cos(tilt_axis)])
    return np.array([across[0] * np.sin(tilt), across[1] * np.sin(tilt), -np.cos(tilt)])


def reflections(lamps: list[Lamp], centre_mm: np.ndarray, normal: np.ndarray,
                focal_px: float, size: tuple[int, int]) -> list[tuple[float, float, float]]:
    """Where the camera sees each lamp in a mirror (a phone's glass): (x px, y px, sigma px).

    The camera sees a lamp's mirror image L' = L - 2((L - P).n) n through the plane of the
    glass (point P, normal n towards the camera), on the line from the lens to L' -- if the
    lamp is in front of the glass (a lamp behind it cannot shine on it) and L' is in front
    of the lens.  The reflection's size is the lamp's, seen at the distance |L'| it has
    travelled.  A reflection whose centre is far outside the frame is left out; whether it
    falls on the glass is for the caller's mask.
    """
    w, h = size
    seen = []
    for lamp in lamps:
        pos = np.array([lamp.x, lamp.y, lamp.z])
        side = float((pos - centre_mm) @ normal)
        if side <= 0:
            continue
        image = pos - 2 * side * normal
        if image[2] <= 0:
            continue
        u = w / 2 + focal_px * image[0] / image[2]
        v = h / 2 + focal_px * image[1] / image[2]
        sigma = focal_px * lamp.radius / float(np.linalg.norm(image))
        if -4 * sigma < u < w + 4 * sigma and -4 * sigma < v < h + 4 * sigma:
            seen.append((float(u), float(v), sigma))
    return seen


def make_clip(kind: str, index: int, seed: int = 0, n_frames: int = 30,  # noqa: C901
              exposure: str = "normal", glare: str = "lamps", camera: str = "mix",
              af: str = "kiosk", light: str = "room", detail: int = 1) -> Clip:
    """Clip ``index`` of ``kind``; the same arguments always give the same pixels.

    ``exposure`` is the camera's AeExposureMode profile (``EXPOSURES``).  The same clip in
    another profile is the same scene, hand and code: only the shutter (motion blur) and
    the gain (noise) differ.

    ``glare`` is how a lamp shows in a phone's glass: ``"lamps"`` (the default) reflects the
    lamps of a ceiling (:func:`ceiling_lamps`) in the glass as a mirror does, so a
    reflection is there only when the phone's tilt sends a lamp into the lens, and moves as
    the phone turns; ``"fixed"`` is the model before 2026-12-06 (``GLARES``): one lamp on
    every phone, fixed in the image.  Both draw the same numbers for everything else, so
    the two give the same clip but for the glass.

    ``camera`` is ``"mix"`` (the default: each clip draws a Module 3 or a Module 2, half and
    half), or ``"module3"`` / ``"module2"``: the same scene (hand, code, light, surface)
    seen by that camera module, as a fleet of one kind would see it.

    ``af`` is how a Module 3's autofocus is set up: ``"kiosk"`` (the default) as the kiosk
    sets it (``AF_SETUPS``: the macro range, the fast speed, with its slew limit), or
    ``"libcamera"``, libcamera's defaults (the model before 2026-12-06: the lens waits on
    the room behind, the normal speed, no slew limit).

    ``light`` is ``"room"`` (the default) or ``"kiosk"``: the same scene with the kiosk's own
    lamp on (``LIGHTS``, ``KIOSK_LAMP``).

    ``detail`` > 1 models a Pi camera that sends two streams of the same exposure, as the
    kiosk sets picamera2 up: the analysis frames (``frames``, the ``lores`` stream) and a
    ``main`` stream ``detail`` times larger each way (``Clip.detail``).  The scene is
    rendered at the main stream's size (motion, defocus and the lens's own blur in its
    pixels, the sensor noise of its binning) and each analysis frame is its area average,
    as the ISP's scaler makes it; the geometry is the same as with ``detail=1``, the
    pixels not quite (an area average is a little softer than a point sample).  A webcam
    (one MJPEG stream) and a card seen through the native-resolution window (no finer
    pixels to send) have no main stream: ``Clip.detail`` is None for them.
    """
    if glare not in GLARES:
        raise ValueError(f"unknown glare model {glare!r}; choose one of {GLARES}")
    if camera not in CAMERAS:
        raise ValueError(f"unknown camera {camera!r}; choose one of {CAMERAS}")
    if af not in AF_SETUPS:
        raise ValueError(f"unknown autofocus set-up {af!r}; choose one of {AF_SETUPS}")
    if kind not in CLIP_KINDS:
        raise ValueError(f"unknown clip kind {kind!r}; choose one of {CLIP_KINDS}")
    if exposure not in EXPOSURES:
        raise ValueError(f"unknown exposure profile {exposure!r}; choose one of {EXPOSURES}")
    if light not in LIGHTS:
        raise ValueError(f"unknown light {light!r}; choose one of {LIGHTS}")
    key = f"clip:{seed}:{kind}:{index}"
    prng = random.Random(key)
    rng = np.random.default_rng(list(key.encode()))
    w, h = fg.SIZES[0] if prng.random() < 0.7 else fg.SIZES[1]
    webcam = w == fg.SIZES[1][0]
    tau = rng.uniform(0.06, 0.15)
    # The clip starts when the code is in view, already moving: 0.5-1.2 time constants
    # into the hand's move, around its top speed (at one time constant).
    t = np.arange(n_frames) / FPS + rng.uniform(0.5, 1.2) * tau

    # What is shown, and where it is held.
    payload: bytes | None = None
    family = ""
    if kind == "no_code":
        n = 33
        face = _blank_card(rng, n)
        like = prng.choice(("card", "phone", "paper"))
    else:
        family = prng.choice(_KINDS_FOR[kind])
        payload = fg.make_payload(prng, family)
        modules = fg._modules(payload, prng)
        n = modules.shape[0]
        face = fg._render(modules, 8)
        like = kind
    if like == "card":
        size_mm, rest_d = rng.uniform(10.5, 11.5), rng.uniform(200.0, 300.0)
    elif like == "phone":
        size_mm, rest_d = rng.uniform(40.0, 65.0), rng.uniform(120.0, 250.0)
    else:
        size_mm, rest_d = rng.uniform(30.0, 70.0), rng.uniform(150.0, 320.0)
    symbol = n - 8 if kind != "no_code" else n
    drawn_af = prng.random() < 0.5
    autofocus = {"mix": drawn_af, "module3": True, "module2": False}[camera]
    # The autofocus clips are a Camera Module 3, with its own lens and sensor; the others
    # a Module 2.
    optics = fg.MODULE3 if autofocus else fg.MODULE2
    # A card is seen through the native-resolution centre window (docs/decoding.md).
    zoom = optics.sensor_px / w if like == "card" else 1.0
    dim_room = prng.random() < 0.25
    # A lamp on the kiosk lights a card or a sheet; a phone's screen gives its own light.
    dim = dim_room and not (light == "kiosk" and like != "phone")
    camera = "module3" if autofocus else "module2"
    # The normal profile's shutter, as the model has always had it (scene_exposure() and
    # divide_exposure() give the same, and tests/test_bench_decoding.py checks they do).
    shutter = 1 / 30 if dim else 1 / 60
    sensor_gain = scene_exposure(camera, dim) / shutter
    if exposure != "normal":
        shutter, other_gain = divide_exposure(scene_exposure(camera, dim), camera, exposure)
        noise_factor = float(np.sqrt(other_gain / sensor_gain))
        sensor_gain = other_gain

    # Motion, in mm in the plane of the code and mm of distance.
    ppm_rest = fg.px_per_mm(rest_d, w, zoom, optics)
    field_mm = np.array([w, h]) / ppm_rest
    code_mm = size_mm * n / symbol
    room = np.maximum(field_mm - code_mm, 1.0) / 2
    rest_xy = rng.uniform(-0.6, 0.6, 2) * room
    ang = rng.uniform(0, 2 * np.pi)
    travel = rng.uniform(0.5, 1.0) * float(np.hypot(*room))
    start_xy = rest_xy + travel * np.array([np.cos(ang), np.sin(ang)])
    d_start = rest_d + rng.uniform(-0.2, 0.4) * rest_d
    xs, vx = _approach(t, start_xy[0], rest_xy[0], tau)
    ys, vy = _approach(t, start_xy[1], rest_xy[1], tau)
    ds, _ = _approach(t, d_start, rest_d, tau * rng.uniform(0.8, 1.5))
    for axis_pos, axis_vel in ((xs, vx), (ys, vy)):
        p, v = _shake(t, rng)
        axis_pos += p
        axis_vel += v
    turn0 = rng.normal(0, 0.12) if like != "phone" else rng.normal(0, 0.3)
    turn = turn0 + np.radians(rng.uniform(-2, 2)) * np.sin(2 * np.pi * rng.uniform(0.3, 1) * t)
    tilt0 = min(abs(rng.normal(0, np.radians(15))), np.radians(45))
    tilt = np.clip(tilt0 + np.radians(rng.uniform(-3, 3)) * np.sin(
        2 * np.pi * rng.uniform(0.3, 1) * t + rng.uniform(0, 6)), 0, np.radians(60))
    tilt_axis = rng.uniform(0, np.pi)

    # Focus: Module 3 hunting from the room behind, or a Module 2 turned to 25 cm.
    # The autofocus draws come from the scene's stream when the drawn camera was a Module 3;
    # a camera forced otherwise keeps that stream in step, so every other draw (the hand,
    # the surface, the noise) is the same scene.
    af_rng = rng if drawn_af else np.random.default_rng(list(f"{key}:af".encode()))
    if drawn_af and not autofocus:
        rng.integers(2, 5), rng.uniform(0.05, 0.12), rng.uniform(600.0, 2000.0)
    if autofocus:
        late = int(af_rng.integers(2, 5))
        lag = af_rng.uniform(0.05, 0.12)
        # The lens moves in dioptres (1/distance): its travel from the sensor is
        # proportional to them, and libcamera's autofocus (rpi.af) works in them.  An
        # approach that is exponential in distance would leave the focus far too long
        # beyond a close code (at 2 time constants: 1.7 D behind, not 0.4 D).
        inv = 1 / af_rng.uniform(600.0, 2000.0)
        lo, hi, slew = -np.inf, np.inf, np.inf
        if af == "kiosk":
            # AfRange Macro bounds the lens (it waits at the near end, not on the room),
            # AfSpeed Fast raises the loop gain by 0.020 / 0.016 and the slew limit to 2 D a
            # frame (imx708.json, rpi.af "speeds"); in mm^-1 here.
            lo, hi = AF_MACRO_DIOPTRES[0] / 1000, AF_MACRO_DIOPTRES[1] / 1000
            lag *= AF_NORMAL_GAIN / AF_FAST_GAIN
            slew = AF_FAST_SLEW_DIOPTRES / 1000
            inv = min(max(inv, lo), hi)
        focus = np.empty_like(t)
        for i, d in enumerate(ds):
            if i >= late:
                want = min(max(1 / d, lo), hi)
                step = (want - inv) * (1 - np.exp(-1 / (FPS * lag)))
                inv += float(np.clip(step, -slew, slew))
            focus[i] = 1 / inv
    else:
        focus = np.full_like(t, fg.KIOSK_FOCUS_MM)

    # The look of the surface.
    dark, light = rng.uniform(0.05, 0.15), rng.uniform(0.75, 0.95)
    margin = 0.15
    screen = None
    shade = 0.0
    if like == "phone":
        dark, light = rng.uniform(0.1, 0.3), rng.uniform(0.7, 1.0)
        margin = 0.3
        screen = (rng.uniform(2.2, 4.5), rng.uniform(0, np.pi), rng.uniform(0.1, 0.35),
                  rng.uniform(0.5, 1.8), rng.uniform(0.3, 1.0), rng.uniform(0.08, 0.2) * w)
    elif like == "paper":
        if prng.random() < 0.4:            # faded print
            mid, span = rng.uniform(0.45, 0.7), rng.uniform(0.15, 0.35)
            dark, light = mid - span / 2, mid + span / 2
        shade = rng.uniform(0.1, 0.4)
    noise = rng.uniform(0.01, 0.04) * (DIM_NOISE if dim else 1.0)
    if exposure != "normal":
        noise *= noise_factor
    jpeg = int(rng.integers(50, 90)) if webcam else None
    background = fg._background(rng, w, h, busy=0.6)
    system = fg._SYSTEM_SIGMA_SENSOR_PX * w * zoom / optics.sensor_px
    k_bin = optics.sensor_px / (w * zoom)
    gx, gy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    shade_ang = rng.uniform(0, 2 * np.pi)
    # The lamps come from their own stream of numbers, so that every other draw (and so
    # every clip without a screen) stays what it was under the fixed model.
    lamps = ceiling_lamps(np.random.default_rng(list(f"{key}:lamps".encode())))
    if light == "kiosk":
        lamps.append(KIOSK_LAMP)
    glare_frames = 0

    if detail < 1:
        raise ValueError(f"detail must be 1 or more (times the frame's size), got {detail!r}")
    # A main stream finer than the frames only where the sensor has the pixels for it.
    s = detail if detail > 1 and not webcam and k_bin >= detail else 1
    big_w, big_h = w * s, h * s
    backdrop = background if s == 1 else cv2.resize(background, (big_w, big_h),
                                                    interpolation=cv2.INTER_LINEAR)
    # The main stream's noise has its own numbers, so the scene's draws stay those of detail=1.
    noise_rng = rng if s == 1 else np.random.default_rng(list(f"{key}:detail".encode()))
    frames = []
    fine = []
    blur_px = []
    defocus_px = []
    where = []          # (x, y, width) of the code in frame pixels, face-on width
    for i in range(n_frames):
        ppm = fg.px_per_mm(ds[i], w, zoom, optics)
        frame = backdrop.copy()
        centre = (w / 2 + xs[i] * ppm, h / 2 + ys[i] * ppm)
        width = min(ppm * code_mm, 0.95 * h)
        where.append((round(centre[0]), round(centre[1]), round(width)))
        # Frame pixel (x, y) covers main-stream pixels s*x .. s*x + s - 1.
        big_centre = (centre[0] * s + (s - 1) / 2, centre[1] * s + (s - 1) / 2)
        glass = fg._place(frame, face, width * s, rng, float(turn[i]), float(tilt[i]),
                          ppm * ds[i] * s, dark, light, margin, centre=big_centre,
                          tilt_axis=tilt_axis)
        if screen is not None:
            # Moiré (the screen's pixel grid against the sensor's) and glare (a lamp seen
            # in the glass) are on the phone's screen only, never on the room behind it.
            period, s_ang, depth, gamma, gain, gr = screen
            yy, xx = np.mgrid[0:big_h, 0:big_w].astype(np.float32)
            phase = 2 * np.pi * (np.cos(s_ang) * xx + np.sin(s_ang) * yy) / (period * s)
            moire = 1 - depth * (0.5 + 0.5 * np.cos(phase))
            if glare == "fixed":
                spots = [(gx, gy, gr)]
            else:
                spots = reflections(lamps, np.array([xs[i], ys[i], ds[i]]),
                                    glass_normal(float(tilt[i]), tilt_axis), ppm * ds[i],
                                    (w, h))
            shine = np.zeros_like(frame)
            for sx, sy, sr in spots:
                sx, sy, sr = sx * s + (s - 1) / 2, sy * s + (s - 1) / 2, sr * s
                shine += gain * np.exp(-((xx - sx) ** 2 + (yy - sy) ** 2) / (2 * sr * sr))
            glare_frames += bool(spots) and float((shine * glass).max()) > 0.05
            lit = np.clip(frame * moire, 0, 1) ** gamma + shine
            frame = frame * (1 - glass) + lit * glass
        if shade:
            yy, xx = np.mgrid[0:big_h, 0:big_w].astype(np.float32)
            ramp = (0.5 + 0.5 * np.cos(shade_ang) * xx / big_w
                    + 0.5 * np.sin(shade_ang) * yy / big_h)
            frame = frame * (1 - shade * ramp)
        # Motion blur: the code's travel in the image during the exposure.
        speed = float(np.hypot(vx[i], vy[i]))
        length = speed * shutter * ppm
        if length > 0.7:
            frame = fg._motion(frame, length * s, float(np.arctan2(vy[i], vx[i])))
        radius = fg.blur_diameter_px(ds[i], focus[i], w, zoom, optics) / 2
        if radius > 0.3:
            frame = fg._defocus(frame, radius * s)
        frame = cv2.GaussianBlur(frame, (0, 0), system * s)
        if s == 1:
            frames.append(fg._finish(frame, rng, noise / k_bin, jpeg))
        else:
            # Sensor noise in the main stream's pixels (each bins s*s times fewer sensor
            # pixels); the analysis frame is their area average, as the ISP scales it.
            noisy = frame + noise_rng.normal(0, noise * s / k_bin, frame.shape).astype(
                np.float32)
            fine.append(fg.to_bytes(noisy))
            frames.append(fg.to_bytes(cv2.resize(noisy, (w, h), interpolation=cv2.INTER_AREA)))
        blur_px.append(round(length, 1))
        defocus_px.append(round(radius, 1))
    params = {"size": (w, h), "family": family, "like": like, "autofocus": autofocus,
              "camera": camera, "dim": dim, "dim_room": dim_room, "light": light,
              "tau_s": round(tau, 3),
              "exposure": exposure, "glare": glare, "glare_frames": glare_frames, "af": af,
              "shutter_ms": round(1000 * shutter, 2),
              "gain": round(sensor_gain, 2), "noise": round(noise, 4),
              "px_per_module": round(ppm_rest * code_mm / n, 2),
              "motion_blur_px": blur_px, "defocus_radius_px": defocus_px,
              "where_px": where, "detail": s}
    return Clip(kind, index, frames, payload, params, fine if s > 1 else None)


def clips(per_kind: int, seed: int = 0, kinds: tuple[str, ...] = CLIP_KINDS,
          n_frames: int = 30, exposure: str = "normal", glare: str = "lamps",
          camera: str = "mix", af: str = "kiosk", light: str = "room", detail: int = 1):
    """``per_kind`` clips of each kind, kind by kind."""
    for kind in kinds:
        for i in range(per_kind):
            yield make_clip(kind, i, seed, n_frames, exposure, glare, camera, af, light,
                            detail)


def add_scene_options(parser: argparse.ArgumentParser) -> None:
    """The options that choose how the clips are made, for every bench that makes them."""
    parser.add_argument("--exposure", choices=EXPOSURES, default="normal",
                        help="the camera's AeExposureMode profile the clips model "
                             "(default normal)")
    parser.add_argument("--glare", choices=GLARES, default="lamps",
                        help="lamps in a phone's glass: reflected from a ceiling (lamps, the "
                             "default) or the older fixed spot (fixed)")
    parser.add_argument("--camera", choices=CAMERAS, default="mix",
                        help="camera module: half and half (mix, the default), or every clip "
                             "seen by a module3 or a module2")
    parser.add_argument("--af", choices=AF_SETUPS, default="kiosk",
                        help="Module 3 autofocus: as the kiosk sets it (kiosk, the default) or "
                             "libcamera's defaults (libcamera)")
    parser.add_argument("--light", choices=LIGHTS, default="room",
                        help="light on the codes: the entrance's own (room, the default) or "
                             "with the kiosk's lamp on (kiosk)")
    parser.add_argument("--detail", type=int, default=2,
                        help="a Pi camera's main stream, this many times the analysis frame's "
                             "size each way, the frame its area average (default 2, the kiosk's "
                             "camera since 2026-12-07); 1: point-sampled frames alone, the "
                             "model before")


def scene_options(args: argparse.Namespace) -> dict[str, Any]:
    """What :func:`add_scene_options` parsed, as keyword arguments of :func:`clips`."""
    return {"exposure": args.exposure, "glare": args.glare, "camera": args.camera,
            "af": args.af, "light": args.light, "detail": args.detail}


def describe(scene: dict[str, Any]) -> str:
    """``exposure normal, glare lamps, ...``: the scene options, for a bench's first line."""
    return ", ".join(f"{k} {v}" for k, v in scene.items())


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.clipgen OUTDIR [PER_KIND]``: write clips as folders of PNG frames."""
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m bench.clipgen",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="folder for the clips (created)")
    parser.add_argument("per_kind", type=int, nargs="?", default=2)
    parser.add_argument("--seed", type=int, default=0)
    add_scene_options(parser)
    args = parser.parse_args(argv)
    for clip in clips(args.per_kind, args.seed, **scene_options(args)):
        folder = args.outdir / f"{clip.kind}-{clip.index:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(clip.frames):
            cv2.imwrite(str(folder / f"{i:03d}.png"), frame)


if __name__ == "__main__":
    main()
