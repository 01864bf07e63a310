"""A user's data across Parley: export, import, account and conversation deletion.

- ``hooks``: the ``UserData`` and ``ConversationData`` protocols a feature
  implements for its share, and the jobs passed to them (registered with
  ``FeatureContext.add_user_data`` / ``add_conversation_data``);
- ``document``: the export format (``parley-export-2``) and its validation;
- ``service``: ``export_user``, ``import_user``, ``delete_account`` over the
  core's stores and every hook;
- ``conversations``: ``delete_conversations``, one conversation's (or a few)
  deletion with every feature's ``ConversationData`` hook;
- ``journal``: the on-disk record of bytes to remove once a deletion commits;
- ``archive``: reading an uploaded export (JSON or ZIP, bounded) and writing
  the ZIP that carries file bytes.

A service layer: no web framework, no feature imported (features come in
through their hooks).
"""

from parley.userdata.hooks import (
    AfterCommit,
    ConversationData,
    DeleteJob,
    ExportJob,
    ImportJob,
    UserData,
    UserDataHooks,
)

__all__ = [
    "AfterCommit",
    "ConversationData",
    "DeleteJob",
    "ExportJob",
    "ImportJob",
    "UserData",
    "UserDataHooks",
]
