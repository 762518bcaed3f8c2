"""Edit photos and video: the editor (detect, align, translate, un-warp, blend), blending and
masks, generator backends, face tracking, live preview and batch apply."""
