"""`creatordeck demo` and `creatordeck seed`: the product on one machine, and its data.

Tooling, not product: only the CLI imports this package (an import-linter contract);
`seed` without `--demo` inserts just the starting regions (any deployment).

Modules:

- `ports.py`: The demo's ports: where they come from, and the check that runs before anything
  starts.
- `seed_creators.py`: Demo creators: a few hundred mock-platform accounts spread over the demo
  regions, with a week of hourly history (from the mock platform's own deterministic growth) so
  the Creators screen shows change, growth and charts at once.
- `seed_experiments.py`: Demo data for experiments: two experiments, synthetic app traffic over
  a week, rollups.
- `seed_posts.py`: Demo publishing: one mock-platform account and a few posts due in the next
  minutes, so the Posts screen shows work going out.
- `seed_regions.py`: Demo and first-run data, inserted idempotently.
- `seeding.py`: `creatordeck seed`: the starting regions, and fast-firing ones for the demo.
- `supervisor.py`: `creatordeck demo`: the whole product on one machine, in one command.
"""
