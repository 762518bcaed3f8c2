"""eyeedit: edit the eye region of faces (glasses, eye colour, makeup) with a conditional GAN.

The Python API works without the CLI::

    from eyeedit import Editor
    edited = Editor.load("glasses").edit(image_rgb)  # (H, W, 3) uint8 RGB in and out
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Editor", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported lazily so that `import eyeedit` (and `eyeedit --help`) stay fast.
    if name == "Editor":
        from eyeedit.editing.editor import Editor

        return Editor
    raise AttributeError(name)
