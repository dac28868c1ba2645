"""Run jobs on this machine, detached, through the pilot wrapper."""
