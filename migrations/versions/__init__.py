"""Revision scripts, oldest first by file name."""
