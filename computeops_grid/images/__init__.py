"""Container images for the grid: an unpacked.cern.ch-style repository and Docker <-> Singularity recipes.

Modules: ``reference`` (image names), ``layout`` (paths in the repository), ``sources``
(OCI layout, oci-archive, docker-archive, containers-storage), ``unpack`` (safe layer
extraction), ``publish`` (atomic publish), ``repository`` (list/rm/gc), ``verify``,
``wishlist`` (DUCC YAML), ``cvmfs_server`` (stratum-0 transactions), ``recipes``.
"""
