"""The header's alerts segment: how many alert conditions fire, from `console.data.alerts`.

Shared by every screen's header through the app's one `AlertMonitor`, so it costs one facts
read per `data_alerts.EVAL_S`, not one per refresh. Where the full words (`alerts: 2 firing (1
silenced)`) do not fit, the header uses the compact form: `2 firing`, nothing when none fires,
`alerts: unknown` when they could not be read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text

from console.data.alerts import monitor_for
from console.data.common import STORE_ERRORS
from engine.alerts.evaluate import State

if TYPE_CHECKING:
    from console.deck import Deck


@dataclass(frozen=True, slots=True)
class AlertsBadge:
    full: Text
    compact: Text

    def fit(self, room: int) -> Text:
        return self.full if self.full.cell_len <= room else self.compact


async def alerts_line(deck: Deck) -> AlertsBadge:
    full = Text("  alerts: ", no_wrap=True)
    compact = Text(no_wrap=True)
    try:
        view = await monitor_for(deck).current()
    except STORE_ERRORS as exc:  # never break the header over a store that is away
        full.append(f"unknown ({type(exc).__name__})", style="dim")
        compact.append("  alerts: unknown", style="dim")
        return AlertsBadge(full, compact)
    firing, pending = view.count(State.FIRING), view.count(State.PENDING)
    if firing:
        full.append(f"{firing} firing", style="bold white on red")
        compact.append("  ")
        compact.append(f"{firing} firing", style="bold white on red")
    elif pending:
        full.append(f"{pending} pending", style="bold yellow")
    else:
        full.append("ok", style="green")
    if view.silenced:
        full.append(f" ({view.silenced} silenced)", style="dim")
    return AlertsBadge(full, compact)
