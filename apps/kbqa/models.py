from django.conf import settings
from django.db import models


class KnowledgeBase(models.Model):
    """A knowledge base in KoPL's JSON format (concepts, entities, attributes, relations).

    The KoPL JSON lives in `data`, a JSONField, rather than in a file under var/: in the compose
    deployment the web and worker containers share the database but not var/, and the parser
    tasks that come next run in workers. Keeping it in the row also makes an import atomic (the
    row and its content appear together) and backups complete. Lists must `.defer("data")`
    (see services.list_kbs), because a real KB is a few megabytes.
    """

    name = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    source = models.TextField(blank=True, help_text="Provenance: where the data comes from (package and version).")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="knowledge_bases"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # {"entities", "concepts", "relations", "attributes", "relation_facts", "attribute_facts", "qualifier_facts"}
    stats = models.JSONField(default=dict)
    data = models.JSONField(default=dict)
    # sha256 of the normalized content: the per-process engine cache rebuilds when it changes.
    content_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
