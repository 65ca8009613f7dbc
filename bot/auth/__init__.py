"""Who is calling: principals, their roles, and the three ways in (tokens, OIDC, proxy)."""
