"""HTTP routers, one per area of the API (see docs/ARCHITECTURE.md for the contract)."""
