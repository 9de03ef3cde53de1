"""What the MPI launcher told this process, read from the environment (mpi4py is not imported).

``mpiexec`` (MPICH's hydra, Open MPI's orterun/prte, Slurm's PMI) exports the rank and size of
each process before it starts; ``launched_by_mpi()`` reads them so that a single-process run
never imports mpi4py, and ``local_rank()`` picks one GPU per process on a node.

Example:
    >>> from gpunet.distributed import launch
    >>> launch.launched_by_mpi()          # False in a plain `python train.py`
    False
"""
from __future__ import annotations

import os

__all__ = ["launched_by_mpi", "env_world_size", "env_rank", "local_rank", "local_size"]

# (size, rank, local rank) variables, one row per launcher family.
_LAUNCHERS = (
    ("PMI_SIZE", "PMI_RANK", "MPI_LOCALRANKID"),                                # MPICH hydra, Intel MPI
    ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK"),  # Open MPI
    ("PMIX_SIZE", "PMIX_RANK", "PMIX_LOCAL_RANK"),                               # PMIx launchers
    ("MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_LOCAL_RANK"),  # MVAPICH2
)


def _int_env(name):
    value = os.environ.get(name, "").strip()
    return int(value) if value.lstrip("-").isdigit() else None


def _launcher():
    for size_var, rank_var, local_var in _LAUNCHERS:
        if _int_env(rank_var) is not None and (size_var == "PMIX_SIZE" or _int_env(size_var) is not None):
            return size_var, rank_var, local_var
    if _int_env("PMIX_RANK") is not None:  # Open MPI 5 exports PMIX_RANK without a size
        return "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_LOCAL_RANK"
    return None


def launched_by_mpi() -> bool:
    """True when an MPI launcher started this process (``mpiexec -n K ...``), even with K = 1."""
    return _launcher() is not None


def env_world_size() -> int:
    """The number of processes the launcher started (1 outside an MPI launch)."""
    found = _launcher()
    return (_int_env(found[0]) or 1) if found else 1


def env_rank() -> int:
    """This process's rank as the launcher numbered it (0 outside an MPI launch)."""
    found = _launcher()
    return (_int_env(found[1]) or 0) if found else 0


def local_rank() -> int:
    """This process's index among the processes on its machine (picks its GPU); 0 if unknown."""
    found = _launcher()
    if not found:
        return 0
    value = _int_env(found[2])
    return value if value is not None else 0


def local_size() -> int:
    """How many processes of the job share this machine (1 if the launcher does not say)."""
    for name in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "PMIX_LOCAL_SIZE", "MV2_COMM_WORLD_LOCAL_SIZE"):
        value = _int_env(name)
        if value:
            return value
    return 1
