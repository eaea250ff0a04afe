"""The headless engine: arq workers, the region scheduler, jobs, platforms and the HTTP api."""
