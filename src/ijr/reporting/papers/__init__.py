"""One module per paper declaring its reports and make targets in the report registry
(:mod:`ijr.reporting.registry`): ``p000`` (Lee, Park & Lee, the main paper), ``p002`` (MacDonald
et al.), ``p004`` (Li, Wang & Li), and ``claims`` (every experiment's claims, of no one paper).
:func:`ijr.reporting.registry.entries` imports every module here: adding a paper's reports is
adding one module (see docs/design.md, "how to add a figure / a paper")."""
