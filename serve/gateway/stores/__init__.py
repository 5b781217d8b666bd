"""Where acknowledgements persist: embedded SQLite or shared PostgreSQL, and their schemas."""
