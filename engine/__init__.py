"""The engine: everything that runs headless, and the api.

The arq seam (`queue.py`, `queue_admin.py`, `fetch_queue.py`, `publish_queue.py`,
`worker.py`), the scheduler, `jobs/`, `platforms/` (tracking adapters), `publishers/`,
`resilience/`, `alerts/`, and the engine process (`runner.py`). Its own packages:

- `api/`: the HTTP api, its own process (`creatordeck api`).
- `maths/`: pure statistics and hashing, no I/O.
- `mock_platform/`: the mock platform server for the demo, the tests and the benches.

Never imports the console.
"""
