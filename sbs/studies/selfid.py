"""Flag answers in which a model names itself, which would break the blinding."""

from __future__ import annotations

import re

# Model and vendor names, Latin and Cyrillic spellings.
_NAMES = (
    r"gemma|гемм[аыу]|smol\s*lm|смол\s*лм|llama|ллам[аыу]|лама|mistral|мистрал|qwen|квен|"
    r"chat\s*gpt|gpt-?\d|чат\s*gpt|openai|claude|клод|solar|gigachat|гигачат|yandex\s*gpt|"
    r"яндекс\s*gpt|saiga|сайга|phi-?\d|deepseek|hugging\s*face|google|meta ai|anthropic"
)
_SELF = re.compile(
    r"(?:\bI\s*(?:am|'m)\b|\bmy name is\b|\bя\s*[-—–,]?\s*(?:это\s*)?|\bменя зовут\b|"
    r"\bcreated by\b|\bdeveloped by\b|\btrained by\b|\bсоздан[аоы]?\b|\bразработан[аоы]?\b|"
    r"\bобучен[аоы]?\b)[^.!?\n]{0,40}?(?:" + _NAMES + r")",
    re.IGNORECASE,
)


def names_itself(text: str, extra_names: tuple[str, ...] = ()) -> bool:
    """True when the answer says who it is ("I am Gemma", "Я - SmolLM", "создан Google")."""
    if _SELF.search(text):
        return True
    lowered = text.lower()
    return any(name and name.lower() in lowered for name in extra_names)
