"""creatordeck engine: arq workers, the scheduler, jobs, platforms, resilience, api."""
