"""The notebooks people open: shipped inside speedlab as ``speedlab.notebooks`` (see speedlab/bundled.py)."""
