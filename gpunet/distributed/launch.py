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

# What each launcher family exports (MPICH hydra / Intel MPI, Open MPI, PMIx launchers, MVAPICH2);
# the first variable present wins.
_RANK = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK")
_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE")
_LOCAL_RANK = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "PMIX_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK")
_LOCAL_SIZE = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "PMIX_LOCAL_SIZE", "MV2_COMM_WORLD_LOCAL_SIZE")


def _int_env(name):
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else None


def _first(names, default):
    for name in names:
        value = _int_env(name)
        if value is not None:
            return value
    return default


def launched_by_mpi() -> bool:
    """True when an MPI launcher started this process (``mpiexec -n K ...``), even with K = 1."""
    return _first(_RANK, None) is not None


def env_world_size() -> int:
    """The number of processes the launcher started (1 outside an MPI launch)."""
    return _first(_SIZE, 1) if launched_by_mpi() else 1


def env_rank() -> int:
    """This process's rank as the launcher numbered it (0 outside an MPI launch)."""
    return _first(_RANK, 0)


def local_rank() -> int:
    """This process's index among the processes on its machine (picks its GPU); 0 if unknown."""
    return _first(_LOCAL_RANK, 0) if launched_by_mpi() else 0


def local_size() -> int:
    """How many processes of the job share this machine (1 if the launcher does not say)."""
    return max(1, _first(_LOCAL_SIZE, 1)) if launched_by_mpi() else 1
