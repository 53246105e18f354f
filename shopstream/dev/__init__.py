"""The dev stack: everything `shopstream dev` / `demo` runs on one machine, none of it used in production.

Modules: `runtime` (`shopstream dev` itself: the stack of child processes), `process` (`spawn_dev` and
`DevProcess`: dev as a subprocess of the tests, benchmarks and `shopstream demo`), `broker` (the embedded
Tansu broker), `ports` (free loopback ports, waiting for a listener or an HTTP 200), `shopify_samples`
(signed Shopify order payloads for the simulator, the benchmarks and the tests), `pids` and `tokens`
(what a running dev stack leaves in its state dir) and `registry/` (the embedded Confluent-compatible
schema registry, `shopstream registry serve`).
"""
