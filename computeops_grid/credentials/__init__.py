"""Grid credentials: X.509/VOMS proxies, WLCG bearer tokens and the preflight checks."""
