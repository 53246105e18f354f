"""Customer service: understanding, routing, drafting and governing support tickets (pure cores + the worker)."""
