"""SQLite with a lock file that queues writers in the kernel: ``ENGINE = "hookhub.db.backends.sqlite3"``."""
