"""A fleet simulator and load client that talks to a running engine over its HTTP API only.

`fleet` draws the vehicles and chargers, `physics` moves each battery minute by minute,
`mess` adds what real devices do wrong, `simulation` turns all of it into deliveries,
`client` and `runner` send them, `detection` compares the engine's verdicts with the faults
the simulator injected, `console` shows it, `command` and `demo` are what the CLI runs, with
the options `options` declares.
"""
