"""What a pickle file would import, read from its opcodes without running any; the one-line refusal of one.

torch's weights-only loader refuses a pickle that would build other objects than tensors, in wording that
changes between versions. The scan here says which globals it would import (``os.system`` is worth naming),
and whether the file holds a readable pickle at all (a cut-short checkpoint does not), so that the refusal
names the file and the kind of problem. Only the standard library: nothing is unpickled.
"""

from __future__ import annotations

import os
import pickletools
import zipfile
from pathlib import Path

from .errors import PcdmsError

# Modules whose functions a pickle can call to run commands or code: a file importing one of them is
# never worth the advice to load it anyway.
_DANGEROUS_MODULES = {"os", "posix", "nt", "subprocess", "builtins", "sys", "shutil", "importlib", "runpy", "pty"}
_PICKLE_READ_LIMIT = 64 * 2**20  # a pickle stream longer than this is not the metadata of a checkpoint
# Globals that torch's weights-only unpickler accepts besides its own: not worth naming in a refusal.
_HARMLESS_GLOBALS = {
    "collections.OrderedDict",
    "collections.Counter",
    "builtins.set",
    "builtins.frozenset",
    "builtins.bytearray",
    "builtins.slice",
    "builtins.complex",
    "_codecs.encode",
}


def pickle_imports(path: str | os.PathLike) -> list[str] | None:
    """The ``module.name`` globals a pickle file would import, read from its opcodes without running any
    (the pickles inside a ``torch.save`` zip, or the first pickles of a plain file); None when the file
    holds no readable pickle at all. Torch's own tensor-rebuilding globals are left out."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                streams = [
                    archive.open(name).read(_PICKLE_READ_LIMIT) for name in archive.namelist() if name.endswith(".pkl")
                ]
        else:
            with path.open("rb") as file:
                streams = [file.read(_PICKLE_READ_LIMIT)]
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError):
        return None
    names: list[str] = []
    readable = False
    for stream in streams:
        found = _globals_of(stream)
        if found is not None:
            readable = True
            names += [
                name
                for name in found
                if not name.startswith("torch.") and name not in _HARMLESS_GLOBALS and name not in names
            ]
    return names if readable else None


def _globals_of(stream: bytes) -> list[str] | None:
    """The globals the pickles at the start of ``stream`` import (a legacy torch file holds several in a row),
    or None when not even the first one is a complete pickle."""
    names: list[str] = []
    offset, complete = 0, 0
    while offset < len(stream):
        memo: dict[int, object] = {}
        pushed: list[object] = []  # what each opcode pushed, to resolve STACK_GLOBAL's two strings
        try:
            for opcode, argument, position in pickletools.genops(stream[offset:]):
                name = opcode.name
                if name in ("GLOBAL", "INST"):
                    names.append(str(argument).replace(" ", "."))
                elif name == "STACK_GLOBAL":
                    module, attribute = pushed[-2:] if len(pushed) >= 2 else (None, None)
                    names.append(f"{module}.{attribute}")
                if name == "MEMOIZE":
                    memo[len(memo)] = pushed[-1] if pushed else None
                elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                    memo[int(argument)] = pushed[-1] if pushed else None
                elif name in ("GET", "BINGET", "LONG_BINGET"):
                    pushed.append(memo.get(int(argument)))
                elif name == "STOP":
                    offset += position + 1
                    break
                elif opcode.stack_after:  # strings are kept: STACK_GLOBAL takes its module and name from them
                    pushed.append(argument if isinstance(argument, str) else None)
        except (ValueError, IndexError, KeyError, TypeError, UnicodeDecodeError):
            break
        else:
            if name != "STOP":
                break
            complete += 1
            continue
        break
    return names if complete else None


def unpickling_refused(path: str | os.PathLike, advice: str = "") -> PcdmsError:
    """The one-line error for a file that torch's safe (weights-only) loader refused: a pickle that would
    import other things than tensors (and so could run code), named as such whatever torch's own
    wording; or, when the file holds no readable pickle, a file that is not a checkpoint at all."""
    imports = pickle_imports(path)
    if imports is None:
        return PcdmsError(f"{path}: not a PyTorch checkpoint, or a corrupt one (no readable pickle data)")
    shown = ", ".join(imports[:3]) + (", ..." if len(imports) > 3 else "")
    what = f"import {shown}: objects other than tensors" if imports else "use instructions that build objects"
    dangerous = any(name.split(".")[0] in _DANGEROUS_MODULES for name in imports)
    return PcdmsError(
        f"{path}: refusing to unpickle it: it is a pickle that would {what}, whose unpickling could run code; "
        "pcdms loads tensors only (torch.load weights_only=True)" + ("" if dangerous or not advice else f"; {advice}")
    )
