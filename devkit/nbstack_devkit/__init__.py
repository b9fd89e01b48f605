"""nbstack's local rehearsal and test harness, in one package.

Everything that plays AWS, GitHub, the warehouse or the ECS agent on this
machine lives here, so that `make demo`, the tests and the benches import
the same code by name instead of reaching into each other's folders. The
product (files/, roles/) never imports it.

It runs from the checkout only: `make venv` installs it editable, and
`paths.ROOT` is the checkout it was installed from.
"""
