"""A user's data across Parley: export, import and account deletion.

- ``hooks``: the ``UserData`` protocol a feature implements for its share, and
  the jobs passed to it (registered with ``FeatureContext.add_user_data``);
- ``document``: the export format (``parley-export-2``) and its validation;
- ``service``: ``export_user``, ``import_user``, ``delete_account`` over the
  core's stores and every hook;
- ``archive``: reading an uploaded export (JSON or ZIP, bounded) and writing
  the ZIP that carries file bytes.

A service layer: no web framework, no feature imported (features come in
through their hooks).
"""

from parley.userdata.hooks import (
    AfterCommit,
    DeleteJob,
    ExportJob,
    ImportJob,
    UserData,
    UserDataHooks,
)

__all__ = ["AfterCommit", "DeleteJob", "ExportJob", "ImportJob", "UserData", "UserDataHooks"]
