"""PostgreSQL NOTIFY channels; each notice's payload is a task id.

- ``NEW_TASK_CHANNEL``: a task was created (idle workers look for work);
- ``FINISHED_CHANNEL``: a task became terminal (synchronous waiters read it);
- ``CHANGED_CHANNEL``: a task changed otherwise in what a poll shows (``store.live``).

A change's notice is sent by the statement that makes it (``pg_notify`` in its RETURNING, for
the rows it changed), so it costs no round trip of its own and goes out at commit. A new
task's goes in a statement of its own in the same transaction: a task created already
claimed must wake nobody, and both kinds share the batched INSERT.
"""

NEW_TASK_CHANNEL = "imagegate_tasks"
FINISHED_CHANNEL = "imagegate_finished"
CHANGED_CHANNEL = "imagegate_changed"
