"""Learned networks used by optional renderers. Nothing here imports from `app/`."""
