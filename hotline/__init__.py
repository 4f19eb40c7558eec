"""The spine of the 12345 hotline: app factory, CLI, storage, auth, audit."""
