"""The one kind of error a person running digitlab can fix.

A :class:`UserError` is a missing or malformed file, a bad argument or a bad
request. Its message is one sentence naming the fix; scripts print it without a
traceback and exit with status 2 (``digitlab.cli.cli``), the web app answers it
with HTTP 400. Every layer imports this module, so it imports nothing.
"""


class UserError(Exception):
    """An error the user can fix; its message is one sentence naming the fix."""
