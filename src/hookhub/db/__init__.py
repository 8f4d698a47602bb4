"""Database backends hookhub ships."""
