"""Exceptions raised by the analysis side; messages always name the offending file or model."""


class AnalysisError(Exception):
    """`model`: the name of the model the error is about, when there is one, so the build can point at the
    front matter that declared it without parsing the message."""

    def __init__(self, message: str = "", *, model: str | None = None, field: str | None = None):
        super().__init__(message)
        self.model = model
        self.field = field  # the front-matter field at fault (e.g. a recipe's "expansions"), when known

    def __reduce__(self):  # keeps model and field when it comes back from a worker process (analysis.core.deadline)
        return _rebuild, (type(self), str(self), self.model, self.field, self.__dict__)


def _rebuild(cls: type, message: str, model: str | None, field: str | None, state: dict) -> AnalysisError:
    exc = cls.__new__(cls)
    AnalysisError.__init__(exc, message, model=model, field=field)
    exc.__dict__.update(state)
    return exc


class WeightsError(AnalysisError):
    """A weights file is missing, corrupt, unsafe, or does not fit the architecture."""


class ModelUnavailable(AnalysisError):
    """A model is known but cannot be loaded here (e.g. its weights file is not on this machine)."""
