import pytest
import torch

from helpers import standing_pose


@pytest.fixture
def pose():
    return standing_pose()


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """A command sets torch's threads for the whole process (``--threads``, or the default it chooses from the
    machine's load at that moment): one test's choice must not change the speed of the next."""
    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
