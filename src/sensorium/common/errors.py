"""The error class for bad user input; the CLI turns it into one line and a non-zero exit."""


class SensoriumError(ValueError):
    """A user-facing problem: a bad file, a value out of range, a checkpoint of another model.

    The message names the bad value and says what was expected.
    """
