"""Citizens, the NADRA adapter, credentials, sessions and the OpenID Connect provider.

Not built yet: see the identity issue. The package exists so the layout and the dependency
rule are in place from the start.
"""
