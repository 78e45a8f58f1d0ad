"""Confinement for everything the model asks to do: file paths and commands.

`policy` holds the decision as data, `paths` enforces it for the file tools,
`process` runs commands, `backends` picks how commands are isolated, `helper`
is the built-in isolating exec wrapper, `env` decides what a child may see.
Nothing is imported here: the helper starts for every command and must stay lean.
"""
