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


_SPACES = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r" ?\n[ \n]*")  # applied after _SPACES: starts only at " \n" or "\n"


def names_itself(text: str, extra_names: tuple[str, ...] = ()) -> bool:
    """True when the answer says who it is ("I am Gemma", "Я - SmolLM", "создан Google").

    Runs in linear time: whitespace runs are collapsed first (each a linear scan), so every
    ``\\s*`` of the pattern meets at most two characters and the window after a trigger is
    40 characters; nothing can backtrack over a long run ('я' and 100k spaces).
    """
    compact = _NEWLINES.sub("\n", _SPACES.sub(" ", text))
    if _SELF.search(compact):
        return True
    lowered = compact.lower()
    return any(name and name.lower() in lowered for name in extra_names)
