"""pcdms: Progressive Conditional Diffusion Models for pose-guided person image synthesis."""

from .errors import DatasetError, NoPersonError, PcdmsError, PoseFileError

__version__ = "0.1.0"

__all__ = ["DatasetError", "NoPersonError", "PcdmsError", "PoseFileError", "__version__"]
