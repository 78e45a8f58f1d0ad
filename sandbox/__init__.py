"""Confinement for everything the model asks to do: file paths and commands.

`policy` holds the decision as data, `paths` enforces it for the file tools,
`process` runs commands, `env` decides what a child process may see.
"""

from sandbox.policy import Mode, Policy

__all__ = ["Mode", "Policy"]
