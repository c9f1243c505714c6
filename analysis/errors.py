"""Exceptions raised by the analysis side; messages always name the offending file or model."""


class AnalysisError(Exception):
    pass


class WeightsError(AnalysisError):
    """A weights file is missing, corrupt, unsafe, or does not fit the architecture."""


class ModelUnavailable(AnalysisError):
    """A model is known but cannot be loaded here (e.g. its weights file is not on this machine)."""
