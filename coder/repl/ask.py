"""One question at the terminal, answered with a letter and Enter.

Used for approvals and for the questions asked before a session starts (trust
this folder, this project's base_url). The Enter matters: keys typed ahead for
the agent cannot answer a question by accident.
"""

from __future__ import annotations

STOP = "stop"  # what `choose` returns for Ctrl-C when asked to tell it apart from an answer


def choose(message: str, keys: str, default: str = "n", interrupt: str | None = None) -> str:
    """One of `keys` (lower case); Ctrl-D answers `default`, and Ctrl-C too unless `interrupt` is given,
    in which case Esc gives `interrupt` as well (Esc stops the agent, at a question too)."""
    from prompt_toolkit import prompt
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.validation import Validator

    valid = Validator.from_callable(
        lambda text: len(text.strip()) == 1 and text.strip().lower() in keys,
        error_message=f"type one of: {', '.join(keys)}", move_cursor_to_end=True,
    )
    bindings = KeyBindings()
    if interrupt is not None:
        @bindings.add("escape", eager=True)
        def _(event) -> None:  # noqa: ANN001
            event.app.exit(exception=KeyboardInterrupt, style="class:aborting")
    try:
        return prompt(message, validator=valid, validate_while_typing=False, key_bindings=bindings).strip().lower()
    except KeyboardInterrupt:
        return default if interrupt is None else interrupt
    except EOFError:
        return default
