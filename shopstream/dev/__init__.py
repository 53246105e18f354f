"""The dev stack: everything `shopstream dev` / `demo` runs on one machine, none of it used in production.

Modules: `runtime` (`shopstream dev` itself: the stack of child processes, and `DevProcess`/`spawn_dev`
to drive it as a subprocess from tests and benchmarks), `broker` (the embedded Tansu broker), `ports`
(free loopback ports, waiting for a listener), `demo` (the sample Shopify feed of `shopstream demo`,
also used by tests and benchmarks) and `registry/` (the embedded Confluent-compatible schema registry,
`shopstream registry serve`).
"""
