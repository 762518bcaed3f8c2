"""eyeedit: edit the eye region of faces (glasses, eye colour, makeup) with a conditional GAN."""

__version__ = "0.1.0"
