"""The notebooks papermill runs on a schedule: shipped inside speedlab as ``speedlab.scheduled``
(see speedlab/bundled.py)."""
