"""One Function subclass per op, grouped by family; users call them through gpunet.functional."""
