"""Docker Swarm: one replicated-job service per job."""
