"""Images for the QR decoder: files loaded as grayscale frames, and clean QR codes drawn for
test cards and replayed frames."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from hardware.errors import DecoderError

# A decompression bomb or a panorama is not a camera frame; Pillow's own limit (~89 Mpx)
# only warns, so refuse clearly above it instead.
MAX_PIXELS = 50_000_000


def load_gray(path: str | os.PathLike[str]) -> np.ndarray:
    """Any image file Pillow reads -> 2-D uint8 grayscale array (H, W).

    Raises DecoderError naming the file when it is missing, unreadable or not an image.
    """
    p = Path(path)
    try:
        with Image.open(p) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise DecoderError(f"{str(p)!r} is {opened.width}x{opened.height} pixels, more "
                                   f"than a camera frame ({MAX_PIXELS} pixels at most); crop or "
                                   "scale it")
            # Photos from phones carry their orientation in EXIF; frames must be upright.
            im: Image.Image = ImageOps.exif_transpose(opened)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                # Transparent pixels are usually black underneath: put them on white paper.
                im = im.convert("RGBA")
                paper = Image.new("RGBA", im.size, "white")
                im = Image.alpha_composite(paper, im)
            gray = np.asarray(im.convert("L"), dtype=np.uint8)
    except FileNotFoundError as e:
        raise DecoderError(f"image file {str(p)!r} does not exist; check the path") from e
    except IsADirectoryError as e:
        raise DecoderError(f"{str(p)!r} is a directory, not an image file") from e
    except PermissionError as e:
        raise DecoderError(f"image file {str(p)!r} cannot be read: permission denied") from e
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise DecoderError(f"{str(p)!r} is not an image Pillow can read (PNG, JPEG, BMP, "
                           f"TIFF, WebP...): {e}") from e
    except (OSError, ValueError, SyntaxError) as e:   # truncated or corrupt image data
        raise DecoderError(f"image file {str(p)!r} is damaged or truncated: {e}") from e
    return np.ascontiguousarray(gray)


def qr_image(payload: str | bytes, *, module_px: int = 4, border: int = 4) -> Image.Image:
    """A clean black-on-white QR code of ``payload`` (UTF-8, byte mode)."""
    import segno

    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    qr = segno.make_qr(data, error="m", boost_error=False)
    rows = np.array([list(row) for row in qr.matrix], dtype=np.uint8)
    modules = np.pad(rows, border)
    img = np.where(modules > 0, 0, 255).astype(np.uint8)
    img = np.kron(img, np.ones((module_px, module_px), dtype=np.uint8))
    return Image.fromarray(img, "L")
