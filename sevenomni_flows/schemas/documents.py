"""The base of every result document, and failure classification.

Each property's document subclasses :class:`ResultDocument` in its own
module of :mod:`sevenomni_flows.properties` (units in every description).
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import BaseModel, Field
from pymatgen.core import Structure

from .provenance import Provenance

__all__ = [
    "TRANSIENT_ERRORS",
    "ResultDocument",
    "State",
    "failure_type",
    "is_transient",
]


#: Outcome of a planned calculation.
State = Literal["completed", "failed", "skipped"]
#: Failure types a rerun may fix (the machine, not the calculation): out of
#: memory, a timeout, a lost connection, an interruption.  A rerun retries
#: them; it keeps every other failure (bad input, a guard, divergence, an
#: unconverged inner step, a plain RuntimeError) unless asked to retry failures.
TRANSIENT_ERRORS = frozenset(
    {
        "OutOfMemoryError",  # torch's (CUDA)
        "MemoryError",
        "TimeoutError",
        "ConnectionError",
        "BrokenPipeError",
        "ConnectionAbortedError",
        "ConnectionRefusedError",
        "ConnectionResetError",
        "InterruptedError",
        "KeyboardInterrupt",
    }
)
#: How an accelerator's out-of-memory reads when raised as a RuntimeError
#: ("CUDA out of memory", "CUDA error: out of memory", "MPS backend out of
#: memory", cuBLAS failing to allocate).
_OUT_OF_MEMORY = re.compile(r"out of memory|CUBLAS_STATUS_ALLOC_FAILED", re.IGNORECASE)


def is_transient(error_type: str | None, message: str | None) -> bool:
    """Whether a failure is the machine's (a rerun may succeed).

    Parameters
    ----------
    error_type : str or None
        The exception's type name, e.g. ``"RuntimeError"``.
    message : str or None
        Its message: a ``RuntimeError`` is transient only when it says the
        accelerator ran out of memory; any other is deterministic.

    Examples
    --------
    >>> is_transient("RuntimeError", "CUDA error: out of memory")
    True
    >>> is_transient("RuntimeError", "displaced supercell 3 failed")
    False
    """
    if error_type in TRANSIENT_ERRORS:
        return True
    return error_type == "RuntimeError" and bool(_OUT_OF_MEMORY.search(message or ""))


def failure_type(error: str) -> str:
    """The error type of a structure whose prediction failed with ``error``:
    ``OutOfMemoryError`` (transient: a rerun with more memory may succeed)
    when it ran out of memory, else ``InvalidStructureError``.

    >>> failure_type("out of memory for this structure alone")
    'OutOfMemoryError'
    """
    if _OUT_OF_MEMORY.search(error):
        return "OutOfMemoryError"
    return "InvalidStructureError"


class ResultDocument(BaseModel):
    """Fields every result carries (and ``sevenomni query`` filters on).

    Every planned calculation ends in exactly one current document, found by
    its ``key``: ``completed``, ``failed`` (with ``error`` and
    ``error_type``) or ``skipped`` (``error`` says what it waited for).
    """

    formula: str = Field(description="Reduced formula of the material")
    structure_id: str = Field(description="Hash of the material's input structure")
    label: str | None = Field(
        None, description="Where the material came from, e.g. 'structures.extxyz[17]'"
    )
    labels: list[str] = Field(
        default_factory=list,
        description="Every name that asked for this calculation (identical "
        "inputs under several names, renamed entries); queries on label match "
        "any of them",
    )
    sources: list[str] = Field(
        default_factory=list,
        description="Where the input came from: file paths with [frame], or "
        "the bulk builder",
    )
    property: str = Field(description="What was computed: relax, static, eos, ...")
    model: Provenance = Field(description="Model, checkpoint, task and versions")
    state: State = Field(description="completed, failed or skipped")
    error: str | None = Field(None, description="Why it failed or was skipped")
    error_type: str | None = Field(
        None, description="Exception type of a failure, e.g. ValueError"
    )
    transient: bool | None = Field(
        None,
        description="Failures: whether a rerun may succeed (out of memory, a "
        "timeout, a lost connection, an interruption); reruns keep the others "
        "unless asked to retry",
    )
    input_structure: Structure | None = Field(
        None, description="The structure computed on (relaxed, for properties)"
    )
    key: str = Field(description="Reuse key: hash of the protocol below")
    protocol: dict = Field(
        default_factory=dict,
        description="What the key contains: property, model_sha256, task, dtype, "
        "settings, and 'on' (the input structure id, or the key of the "
        "relaxation the property was computed on)",
    )
    plots: list[str] = Field(default_factory=list, description="Paths of PNG plots")

    #: Summary columns of this property in ``sevenomni query`` tables.
    columns: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def failed(
        cls,
        identity: dict,
        model: Provenance,
        error: BaseException | str,
        error_type: str | None = None,
        **values,
    ) -> ResultDocument:
        """The failed document of a calculation (the one place they are made).

        Parameters
        ----------
        identity : dict
            Its identity fields (formula, structure_id, label, property, key,
            protocol, ...).
        model : Provenance
            The model it ran on.
        error : exception or str
            What went wrong; an exception also gives its type.
        error_type : str, optional
            The failure's type (default: the exception's).
        **values
            Fields of the property known despite the failure.
        """
        if isinstance(error, BaseException):
            error_type = error_type or type(error).__name__
            error = str(error) or type(error).__name__
        return cls(
            **identity,
            model=model,
            state="failed",
            error=error,
            error_type=error_type,
            transient=is_transient(error_type, error),
            **values,
        )
