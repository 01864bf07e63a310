"""The instance: settings an admin changes at run time and the providers stored in
the database, shared by every worker through the database (services, no HTTP)."""
