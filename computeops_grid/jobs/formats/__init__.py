"""Readers of native job descriptions (JDL, xRSL, ADL, HTCondor submit files) into the job model.

``detect`` tells the format of a file from its content (the extension only breaks ties);
``read.read_native`` reads one into validated :class:`~computeops_grid.jobs.model.JobSpec`
and the notes of what the model does not carry. :mod:`computeops_grid.jobs.loader` is the one
entry for job files; it imports the readers only for a file that needs them.
"""
