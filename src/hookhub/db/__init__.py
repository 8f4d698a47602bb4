"""Database helpers: hookhub's SQLite backend and the multi-row INSERT of the hot paths."""
