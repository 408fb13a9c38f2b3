"""Figures and the run summary."""
