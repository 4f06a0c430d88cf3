"""Errors a user can act on.

Each message is one line that names the file (or option) and the problem; the command line prints it
without a traceback.
"""


class PcdmsError(Exception):
    """Bad input or set-up that the user can fix."""


class PoseFileError(PcdmsError):
    """A pose file that cannot be read: wrong format, wrong number of points, or bad values."""


class NoPersonError(PcdmsError):
    """The pose extractor found nobody in an image."""


class DatasetError(PcdmsError):
    """A dataset folder that is not laid out as expected, or whose pairs cannot all be used."""


class TooFewJointsError(PcdmsError):
    """A pose with fewer joints than :data:`pcdms.pose.MIN_POSE_JOINTS`, too few to pose a person."""


class PcdmsWarning(UserWarning):
    """An input that was used, with something the user should know about it (one line); the command line
    prints it as ``pcdms: warning: ...``."""
