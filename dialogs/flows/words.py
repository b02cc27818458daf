"""The global words: what 選單, 取消, 說明, 客服 and the language words do, at any step.

They are typed exactly (`dialogs.engine.global_word`) or recognised in a sentence by the intent
matcher (「我要取消」, 「回主選單」, 「找真人」), and a tap on such a choice does the same.
"""

from __future__ import annotations

from dialogs.turn import Turn

GLOBAL_WORDS = ("menu", "cancel", "help", "agent", "language", "english", "chinese")


async def act_on_word(turn: Turn, word: str) -> None:
    conversation = turn.conversation
    if word in ("menu", "cancel"):
        if conversation.flow is not None:
            await turn.abandon()
            turn.say("flow.cancelled" if word == "cancel" else "flow.left")
        await turn.menu()
    elif word == "help":
        turn.say(f"help.step.{conversation.flow or 'menu'}")
        await turn.reprompt()
    elif word == "agent":
        await turn.services.handoff.request(turn)
    elif word == "language":
        conversation.locale = "en" if conversation.locale == "zh_TW" else "zh_TW"
        turn.say("settings.language.changed")
        await turn.reprompt()
    else:
        conversation.locale = "en" if word == "english" else "zh_TW"
        turn.say("settings.language.changed")
        await turn.reprompt()
