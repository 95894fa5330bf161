"""PostgreSQL for the tests: one throwaway cluster per session, a fresh database per use."""
