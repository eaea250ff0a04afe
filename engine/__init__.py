"""creatordeck engine: arq workers, the scheduler, jobs, platforms, resilience, api."""

import importlib.util
import sys

# httpcore runs `import sniffio` on every request; when sniffio is not installed (newer anyio
# no longer pulls it in), each failed import scans sys.path: ~0.2 ms of CPU per HTTP call, the
# largest single cost of a publish. Recording its absence once makes those imports fail at once.
if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]
