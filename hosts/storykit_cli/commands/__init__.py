"""The command groups. Each module imports only click at import time, so
``storykit --help`` stays fast; the core, httpx and friends load inside commands."""
