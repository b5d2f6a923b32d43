"""The Gradio web app behind ``app.py``: :mod:`webapp.services` (no gradio) and :mod:`webapp.ui`."""
