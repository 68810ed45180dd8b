"""Queued work (extract builds, checkpoints, sweeps, backups): the job table and its claims."""
