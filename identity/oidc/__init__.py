"""The OpenID Connect provider: protocol logic only, no HTTP framework.

Routes in `api.routes.oidc` parse requests and render responses; everything they decide
(who the client is, whether a code or token is good, what a token says) is decided here.
"""
