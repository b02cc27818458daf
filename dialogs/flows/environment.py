"""檢查電腦環境: which .pfx format suits the customer's system (DESIGN §4).

The standard file (AES-256, PBKDF2-SHA256) opens on Windows 10 (1709) and later, Windows 11,
current browsers and NSS; Windows before 10 (1709), Windows Server 2016 and the macOS Keychain
need the compatible file (3DES, SHA-1). The download page detects the platform too; here the
customer says which system they use and gets the recommendation in words.
"""

from __future__ import annotations

from dialogs.flows.understand import elsewhere
from dialogs.turn import Flow, Input, Step, Turn

SYSTEMS = (
    ("win10", "environment.system.win10"),
    ("win_old", "environment.system.win_old"),
    ("macos", "environment.system.macos"),
    ("other", "environment.system.other"),
)
ADVICE = {
    "win10": "environment.advice.win10",
    "win_old": "environment.advice.win_old",
    "macos": "environment.advice.macos",
    "other": "environment.advice.other",
}
MENU_OPTION = ("menu", "environment.action.menu")
CHOOSE, MORE = "system", "more"


async def ask_system(turn: Turn) -> None:
    turn.ask("environment.prompt", [*SYSTEMS, MENU_OPTION])


async def ask_more(turn: Turn) -> None:
    turn.ask(
        "environment.more",
        [
            ("import_help", "environment.action.import_help"),
            ("again", "environment.action.again"),
            MENU_OPTION,
        ],
    )


async def on_system(turn: Turn, answer: Input) -> None:
    choice = answer.choice
    if choice in ADVICE:
        turn.say(ADVICE[choice])
        await turn.goto(MORE)
    elif choice == "again":
        await turn.goto(CHOOSE)
    elif choice == "import_help":
        await turn.start("import_help")
    elif choice == "menu":
        await turn.menu()
    else:
        await elsewhere(turn, answer, "environment.choose")


FLOW = Flow(
    name="environment",
    first_step=CHOOSE,
    steps={CHOOSE: Step(ask_system, on_system), MORE: Step(ask_more, on_system)},
)
