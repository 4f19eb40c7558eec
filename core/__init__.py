"""The floor: settings access, storage, Redis, errors, security primitives, auth, FastAPI dependencies, tasks,
logging. Imports `config` and third-party libraries only: never a domain package, never `hotline` (the top)."""
