"""憑證匯入: step-by-step help for importing the .pfx, per platform (the manual's section 五).

The customer picks Windows, macOS, Firefox or Chrome/Edge and reads the steps; then another
platform, the computer check (which .pfx format suits the system) or the main menu.
"""

from __future__ import annotations

from dialogs.flows.understand import elsewhere
from dialogs.turn import Flow, Input, Step, Turn

PLATFORMS = (
    ("windows", "import_help.platform.windows"),
    ("macos", "import_help.platform.macos"),
    ("firefox", "import_help.platform.firefox"),
    ("chrome", "import_help.platform.chrome"),
)
STEPS = {
    "windows": "import_help.steps.windows",
    "macos": "import_help.steps.macos",
    "firefox": "import_help.steps.firefox",
    "chrome": "import_help.steps.chrome",
}
MENU_OPTION = ("menu", "import_help.action.menu")
CHOOSE, MORE = "platform", "more"


async def ask_platform(turn: Turn) -> None:
    turn.ask("import_help.prompt", [*PLATFORMS, MENU_OPTION])


async def ask_more(turn: Turn) -> None:
    turn.ask(
        "import_help.more",
        [*PLATFORMS, ("environment", "import_help.action.environment"), MENU_OPTION],
    )


async def on_platform(turn: Turn, answer: Input) -> None:
    choice = answer.choice
    if choice in STEPS:
        turn.say(STEPS[choice])
        await turn.goto(MORE)
    elif choice == "environment":
        await turn.start("environment")
    elif choice == "menu":
        await turn.menu()
    else:
        await elsewhere(turn, answer, "import_help.choose")


FLOW = Flow(
    name="import_help",
    first_step=CHOOSE,
    steps={CHOOSE: Step(ask_platform, on_platform), MORE: Step(ask_more, on_platform)},
)
