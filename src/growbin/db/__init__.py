"""PostgreSQL: the engine, the declarative base, the models and the Alembic migrations."""
