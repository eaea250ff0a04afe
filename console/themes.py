"""The console's themes, built from colours the xterm 256-colour palette holds exactly.

Over SSH most terminals announce `xterm-256color`; Textual then maps every colour to the nearest
palette entry. Colours picked off the palette (the 6x6x6 cube's levels 00/5f/87/af/d7/ff and
the grey ramp) map to themselves, so what was designed is what an operator sees, locally or
over SSH, and neighbouring shades do not collapse into one.

`creatordeck` (dark, the default) and `creatordeck-light`; any of Textual's built-in themes
can be chosen too (`theme = "nord"` in the console config, see console.keymap).
"""

from __future__ import annotations

from textual.theme import Theme

DEFAULT_THEME = "creatordeck"

CREATORDECK = Theme(
    name="creatordeck",
    primary="#5f87d7",  # 68
    secondary="#5fafaf",  # 73
    accent="#d7af5f",  # 179
    warning="#d7af00",  # 178
    error="#d75f5f",  # 167
    success="#5faf5f",  # 71
    foreground="#d0d0d0",  # 252
    background="#121212",  # 233
    surface="#1c1c1c",  # 234
    panel="#303030",  # 236
    boost="#262626",  # 235
    dark=True,
    variables={
        "footer-key-foreground": "#d7af5f",
        "block-cursor-background": "#005f87",  # 24: the selected row
        "block-cursor-foreground": "#ffffff",
        "block-cursor-text-style": "bold",
    },
)

CREATORDECK_LIGHT = Theme(
    name="creatordeck-light",
    primary="#005f87",  # 24
    secondary="#008787",  # 30
    accent="#af5f00",  # 130
    warning="#af8700",  # 136
    error="#af0000",  # 124
    success="#008700",  # 28
    foreground="#1c1c1c",  # 234
    background="#eeeeee",  # 255
    surface="#e4e4e4",  # 254
    panel="#d0d0d0",  # 252
    boost="#dadada",  # 253
    dark=False,
    variables={"footer-key-foreground": "#005f87"},
)

THEMES: tuple[Theme, ...] = (CREATORDECK, CREATORDECK_LIGHT)
