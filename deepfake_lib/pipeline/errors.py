"""Why a pipeline stops: one error for a failed run, a narrower one for bad input found before any notebook runs."""


class PipelineError(RuntimeError):
    """A pipeline that cannot start or a notebook that failed; the message says which and where."""

    exit_code = 1  # the command line's code for a pipeline that stopped


class PipelineInputError(PipelineError):
    """Bad input found before any notebook runs (config file, parameters, steps, data or notebook folder)."""

    exit_code = 2
