"""The SuperPhone sandbox's GraphQL schema (SDL) and the root resolvers over :class:`Records`.

Documents are parsed, validated and executed by graphql-core, so an action whose declared
document names a field, argument or type the schema lacks fails here as it would against a
real GraphQL server. Refusals from the data rules become GraphQL errors with
``extensions.code`` (``NOT_FOUND``, ``BAD_USER_INPUT``, ``CONFLICT``) and the field's ``path``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from graphql import GraphQLError, GraphQLResolveInfo, GraphQLSchema, build_schema

from connector.sandbox.superphone.records import Page, Record, RecordError, Records

__all__ = ["SDL", "Root", "build"]

SDL = """
type Contact {
  id: ID!
  firstName: String
  lastName: String
  email: String
  phone: String
  tags: [String!]!
  source: String
  externalId: String
  createdAt: String!
  updatedAt: String!
}

type Note { id: ID! contactId: ID! body: String! createdAt: String! updatedAt: String! }

type Task {
  id: ID!
  contactId: ID!
  title: String!
  description: String
  dueAt: String
  completed: Boolean!
  completedAt: String
  createdAt: String!
  updatedAt: String!
}

type PageInfo { hasNextPage: Boolean! endCursor: String }
type ContactConnection { nodes: [Contact!]! pageInfo: PageInfo! totalCount: Int! }
type NoteConnection { nodes: [Note!]! pageInfo: PageInfo! totalCount: Int! }
type TaskConnection { nodes: [Task!]! pageInfo: PageInfo! totalCount: Int! }
type UpsertContactPayload { contact: Contact! created: Boolean! }
type DeleteContactPayload { id: ID! deleted: Boolean! }

input ContactInput {
  firstName: String
  lastName: String
  email: String
  phone: String
  tags: [String!]
  source: String
  externalId: String
}

type Query {
  contact(id: ID!): Contact
  findContact(email: String, phone: String): Contact
  contacts(first: Int, after: String, updatedSince: String): ContactConnection!
  notes(contactId: ID!, first: Int, after: String): NoteConnection!
  task(id: ID!): Task
  tasks(contactId: ID, completed: Boolean, first: Int, after: String): TaskConnection!
}

type Mutation {
  createContact(input: ContactInput!): Contact!
  updateContact(id: ID!, input: ContactInput!): Contact!
  upsertContact(input: ContactInput!): UpsertContactPayload!
  deleteContact(id: ID!): DeleteContactPayload!
  addTags(contactId: ID!, tags: [String!]!): Contact!
  removeTags(contactId: ID!, tags: [String!]!): Contact!
  createNote(contactId: ID!, body: String!): Note!
  updateNote(id: ID!, body: String!): Note!
  createTask(contactId: ID!, title: String!, description: String, dueAt: String): Task!
  updateTask(id: ID!, title: String, description: String, dueAt: String, completed: Boolean): Task!
  completeTask(id: ID!): Task!
}
"""

_T = TypeVar("_T")


def build() -> GraphQLSchema:
    """The executable schema (root fields resolve on a :class:`Root` given as root value)."""
    return build_schema(SDL)


class Root:
    """Root value of every operation: one method per Query and Mutation field.

    graphql-core's default resolver calls a root attribute that is callable with
    ``(info, **arguments)``. ``writes`` counts the mutations that took effect, by field.
    """

    def __init__(self, records: Records, max_page_size: int) -> None:
        self.records = records
        self.max_page_size = max_page_size
        self.writes: Counter[str] = Counter()

    def _read(self, action: Callable[[], _T]) -> _T:
        try:
            return action()
        except RecordError as exc:
            raise GraphQLError(str(exc), extensions={"code": exc.code}) from exc

    def _write(self, info: GraphQLResolveInfo, action: Callable[[], _T]) -> _T:
        result = self._read(action)
        self.writes[info.field_name] += 1
        return result

    # -- queries ---------------------------------------------------------------------------

    def contact(self, info: GraphQLResolveInfo, id: str) -> Record:
        return self._read(lambda: self.records.contact(id))

    def findContact(self, info: GraphQLResolveInfo, email: str | None = None,
                    phone: str | None = None) -> Record | None:
        return self._read(lambda: self.records.find(email, phone))

    def contacts(self, info: GraphQLResolveInfo, first: int | None = None,
                 after: str | None = None, updatedSince: str | None = None) -> Page:
        found = [r for r in self.records.contacts.values()
                 if updatedSince is None or r["updatedAt"] >= updatedSince]
        return self._read(lambda: self.records.page(found, first, after, self.max_page_size))

    def notes(self, info: GraphQLResolveInfo, contactId: str, first: int | None = None,
              after: str | None = None) -> Page:
        def run() -> Page:
            self.records.contact(contactId)
            found = [r for r in self.records.notes.values() if r["contactId"] == contactId]
            return self.records.page(found, first, after, self.max_page_size)

        return self._read(run)

    def task(self, info: GraphQLResolveInfo, id: str) -> Record:
        return self._read(lambda: self.records.task(id))

    def tasks(self, info: GraphQLResolveInfo, contactId: str | None = None,
              completed: bool | None = None, first: int | None = None,
              after: str | None = None) -> Page:
        found = [r for r in self.records.tasks.values()
                 if (contactId is None or r["contactId"] == contactId)
                 and (completed is None or r["completed"] == completed)]
        return self._read(lambda: self.records.page(found, first, after, self.max_page_size))

    # -- mutations -------------------------------------------------------------------------

    def createContact(self, info: GraphQLResolveInfo, input: dict[str, Any]) -> Record:
        return self._write(info, lambda: self.records.create_contact(input))

    def updateContact(self, info: GraphQLResolveInfo, id: str,
                      input: dict[str, Any]) -> Record:
        return self._write(info, lambda: self.records.update_contact(id, input))

    def upsertContact(self, info: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:
        contact, created = self._write(info, lambda: self.records.upsert_contact(input))
        return {"contact": contact, "created": created}

    def deleteContact(self, info: GraphQLResolveInfo, id: str) -> dict[str, Any]:
        gone = self._write(info, lambda: self.records.delete_contact(id))
        return {"id": gone["id"], "deleted": True}

    def addTags(self, info: GraphQLResolveInfo, contactId: str, tags: list[str]) -> Record:
        return self._write(info, lambda: self.records.tag(contactId, tags, add=True))

    def removeTags(self, info: GraphQLResolveInfo, contactId: str, tags: list[str]) -> Record:
        return self._write(info, lambda: self.records.tag(contactId, tags, add=False))

    def createNote(self, info: GraphQLResolveInfo, contactId: str, body: str) -> Record:
        return self._write(info, lambda: self.records.create_note(contactId, body))

    def updateNote(self, info: GraphQLResolveInfo, id: str, body: str) -> Record:
        return self._write(info, lambda: self.records.update_note(id, body))

    def createTask(self, info: GraphQLResolveInfo, contactId: str, title: str,
                   **fields: Any) -> Record:
        return self._write(
            info, lambda: self.records.create_task(contactId, {"title": title, **fields})
        )

    def updateTask(self, info: GraphQLResolveInfo, id: str, **fields: Any) -> Record:
        return self._write(info, lambda: self.records.update_task(id, fields))

    def completeTask(self, info: GraphQLResolveInfo, id: str) -> Record:
        return self._write(info, lambda: self.records.complete_task(id))
