"""Slurm through its client commands: sbatch arrays, squeue/sacct status, scancel."""
