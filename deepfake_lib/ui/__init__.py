"""Notebook widgets: the inspector and example galleries."""
