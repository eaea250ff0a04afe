"""The console's read models: what each screen shows, and the edits it sends.

Loaded through storage.queries and the engine's seams (engine.queue, engine.queue_admin,
engine.resilience); screens call these from Textual workers and hold no SQL or Redis
commands of their own.

Modules:

- `acting.py`: Who is acting in this process, and as which operator (storage.permissions enforces
  it).
- `alerts.py`: The console's read model for alerts: the conditions of `engine.alerts`, judged
  here.
- `audit.py`: The Audit screen's read model: who changed what and when, before and after,
  filtered.
- `common.py`: The console's read model: what each screen shows, via storage.queries and the
  engine's queues.
- `connect.py`: The console's read model for connecting a platform account (engine.oauth.flow
  does the work).
- `creators.py`: The console's read model for creator tracking: creators, samples, dead letters,
  and the health of each platform (breaker state, quota use).
- `experiments.py`: The Experiments screen's read model: one row per experiment over the last
  `WINDOW_DAYS`, with variant statistics computed from the rollup tables' counts
  (engine.maths.stats), and the parsing of typed weights.
- `operators.py`: The Operators screen's read model: operators, teams, accounts and the SSH keys
  that map to operators; and the admin edits (storage.queries.operators).
- `ops.py`: The console's read model for operations: the Queues and Overview screens.
- `presence.py`: The console's presence: this console beats while it runs, and the Overview
  lists who is on.
- `publishing.py`: The console's read model and edits for publishing (Posts and Connections
  screens).
- `regions.py`: The Regions screen's read model: every region, and the latest run of those on
  screen.
"""
