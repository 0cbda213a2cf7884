"""Shared helpers for Tarn's Python tests: open a connection with the extension loaded."""
import os
import sqlite3

BUILD = os.environ.get("TARN_BUILD_DIR") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
EXTENSION = os.path.join(os.path.abspath(BUILD), "tarn")


def connect(path=":memory:", **kw):
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, **kw)
    db.enable_load_extension(True)
    db.load_extension(EXTENSION)
    db.enable_load_extension(False)
    return db
