"""Every table Parley defines, core and features, on one ``Base.metadata``.

Features keep their tables in their own package (``parley/<feature>/tables.py``)
and add one import here, so migrations (``parley/migrations``) and the
schema-drift test see them. It sits above the features and imports only their
``tables`` modules (each package's ``__init__`` imports nothing), so the
migration path loads no web framework.
"""

# isort: split
import parley.assistants.tables as assistants_tables  # assistants and their versions
import parley.groups.tables as groups_tables  # groups of users
import parley.images.tables as images_tables  # image providers, generated images
import parley.jobs.tables as jobs_tables  # durable jobs
import parley.knowledge.tables as knowledge_tables  # files and knowledge
import parley.memory.tables as memory_tables  # saved memories
import parley.projects.tables as projects_tables  # projects and their members
import parley.responses.tables as responses_tables  # /v1/responses records
import parley.routing.tables as routing_tables  # the Auto model's policies
import parley.sandbox.tables as sandbox_tables  # code interpreter outputs
import parley.usage.tables as usage_tables  # the usage ledger
import parley.web_tools.tables as web_tools_tables  # tool confirmations, MCP servers
from parley.storage import failover as failover_tables  # fallbacks, circuit breakers
from parley.storage import signals as signal_tables  # stop requests polled by workers
from parley.storage.tables import Base

metadata = Base.metadata

FEATURE_TABLE_MODULES = (
    assistants_tables,
    images_tables,
    groups_tables,
    knowledge_tables,
    memory_tables,
    projects_tables,
    responses_tables,
    routing_tables,
    sandbox_tables,
    usage_tables,
    web_tools_tables,
)

__all__ = [
    "FEATURE_TABLE_MODULES",
    "Base",
    "failover_tables",
    "jobs_tables",
    "metadata",
    "signal_tables",
]
