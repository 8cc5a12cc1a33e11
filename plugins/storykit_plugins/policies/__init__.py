"""First-party policies: risk regexes, path rules, hidden text and Open Policy Agent.

Each module is a plugin of its own (``storykit_register_policies``), listed under
the ``storykit`` entry point group like any third-party policy:

- :mod:`.risk_regex` — ``risk-regex``: RE2 rules over the lines a diff adds
- :mod:`.paths` — ``paths``: allowed and denied paths, size limits, binary files
- :mod:`.hidden_text` — ``hidden-text``: invisible or bidirectional Unicode, HTML comments
- :mod:`.opa` — ``opa``: a Rego policy, in process or on an OPA server

``docs/policies.md`` describes their configuration.
"""
