"""Offline weight analyses (torch lives here). The render side imports only the torch-free `analysis.core`, and the
analysis itself only from its one stage (article/analysis_stage.py)."""
