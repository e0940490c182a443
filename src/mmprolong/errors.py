"""Typed errors. Each message names the field or input, the value, and how to fix it."""


class MMProLongError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(MMProLongError, ValueError):
    """A configuration value is missing, of the wrong type, or out of range."""

    def __init__(self, field: str, value: object, fix: str):
        self.field, self.value, self.fix = field, value, fix
        super().__init__(f"config field '{field}' = {value!r}: {fix}")


class DataError(MMProLongError, ValueError):
    """An input (a PDF, a page, a record) cannot be used. Per-item: callers skip and report it."""


class ResumeError(MMProLongError):
    """An output folder holds a run made with different settings, so resuming it would mix two runs."""


class MissingDependencyError(MMProLongError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str):
        super().__init__(f"'{package}' is not installed: pip install 'mmprolong[{extra}]'")


class TrainingDivergedError(MMProLongError):
    """The loss or the gradient norm of a training step is NaN or infinite; the run stopped before applying it."""

    def __init__(self, step: int, loss: float, grad_norm: float, sample_ids: list, checkpoint: str | None):
        self.step, self.loss, self.grad_norm, self.sample_ids, self.checkpoint = (step, loss, grad_norm, sample_ids,
                                                                                   checkpoint)
        super().__init__(f"step {step}: loss {loss}, grad norm {grad_norm} (not finite); the step's samples: "
                         f"{sample_ids}; last good state saved to {checkpoint}; lower optim.lr or inspect those "
                         "samples, then resume")
