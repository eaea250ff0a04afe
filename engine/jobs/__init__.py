"""arq job functions. Each is idempotent: arq may run a job twice (a worker killed mid-job)."""
