"""Make paired data: `prepare` (real before/after photos), `synth` (effects drawn on plain
faces), the effect renderers, the dataset format on disk and its loading into memory."""
