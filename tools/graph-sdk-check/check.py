#!/usr/bin/env python3
"""Checks tenantform's Graph sandbox with Microsoft's own Graph SDK for Python (msgraph-sdk).

Usage: check.py [path/to/tenantform]   (or TENANTFORM_BIN; default target/release/tenantform)

Starts `tenantform sandbox serve --tenants 2 --users 3 --print-env`, reads the variables it
prints, and runs every Graph operation tenantform uses through the SDK's typed request builders.
One line per check, then `graph-sdk-check: N checks, M passed`; exits 1 if any check failed.
"""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from urllib.parse import urlsplit

import httpx
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphServiceClient
from msgraph.generated.models.invitation import Invitation
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.organization_collection_response import (
    OrganizationCollectionResponse,
)
from msgraph.generated.models.unified_role_assignment import UnifiedRoleAssignment
from msgraph.generated.models.user import User
from msgraph.generated.models.user_collection_response import UserCollectionResponse
from msgraph.generated.role_management.directory.role_assignments.role_assignments_request_builder import (
    RoleAssignmentsRequestBuilder,
)
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem
from msgraph_core.tasks.page_iterator import PageIterator

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# Global Reader: a built-in role template id, the same in every tenant.
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"


class SandboxCredential(AsyncTokenCredential):
    """Client credentials against the sandbox's token endpoint (Entra's shape).

    azure-identity's ClientSecretCredential would first ask the authority for instance
    discovery, which the sandbox does not serve; this posts the token request directly.
    """

    def __init__(self, login_url, tenant, client_id, client_secret):
        self.url = f"{login_url.rstrip('/')}/{tenant}/oauth2/v2.0/token"
        self.client_id = client_id
        self.client_secret = client_secret
        self.requests = 0

    async def get_token(self, *scopes, claims=None, tenant_id=None, enable_cae=False, **kwargs):
        self.requests += 1
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                self.url,
                data={
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "scope": " ".join(scopes) or GRAPH_SCOPE,
                    "grant_type": "client_credentials",
                },
            )
        answer.raise_for_status()
        body = answer.json()
        if body.get("token_type", "").lower() != "bearer":
            raise RuntimeError(f"token_type is {body.get('token_type')!r}, not Bearer")
        return AccessToken(body["access_token"], int(time.time()) + int(body["expires_in"]))

    async def close(self):
        pass

    async def __aexit__(self, *args):
        pass


class GraphBatchItem(BatchRequestItem):
    """msgraph-core 1.5.2's BatchRequestItem with two of its bugs worked around, as its users do:

    - it keeps the request's absolute URL (msgraph-sdk-python#1015, msgraph-sdk-python-core#1116),
      which Graph refuses inside a batch: here the URL is made relative to the version root;
    - it writes `depends_on`, not `dependsOn` (msgraph-sdk-python-core#996), which Graph ignores,
      so requests would not be sequenced: here the key is `dependsOn`.
    """

    def __init__(self, info, id, depends_on=None):
        super().__init__(info, id=id, depends_on=depends_on or [])
        parts = urlsplit(self.url)
        path = parts.path
        for version in ("/v1.0", "/beta"):
            if path.startswith(version + "/"):
                path = path[len(version):]
        self.url = path + (f"?{parts.query}" if parts.query else "")

    def serialize(self, writer):
        writer.write_str_value("id", self.id)
        writer.write_str_value("method", self.method)
        writer.write_str_value("url", self.url)
        if self.depends_on:
            writer.write_collection_of_primitive_values("dependsOn", self.depends_on)
        writer.write_additional_data_value({"headers": self.headers})
        if self.body:
            writer.write_additional_data_value({"body": json.loads(self.body)})


async def batch_bodies(graph, content):
    """The batch's answer as JSON: msgraph-core 1.5.2 reads an inner body only when it is a
    base64 string, while Graph (and the sandbox) answer JSON bodies as JSON objects."""
    info = await graph.batch.to_post_request_information(content)
    raw = await graph.request_adapter.send_primitive_async(info, "bytes", {})
    return {r["id"]: r for r in json.loads(raw)["responses"]}


def parse_as(body, model):
    node = JsonParseNodeFactory().get_root_parse_node("application/json",
                                                       json.dumps(body).encode())
    return node.get_object_value(model)


def graph_client(env, tenant):
    credential = SandboxCredential(
        env["TENANTFORM_LOGIN_URL"], tenant, env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"]
    )
    host = httpx.URL(env["TENANTFORM_GRAPH_URL"]).host
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=[GRAPH_SCOPE], allowed_hosts=[host]
    )
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = env["TENANTFORM_GRAPH_URL"].rstrip("/")
    return GraphServiceClient(request_adapter=adapter)


def start_sandbox(binary):
    """Starts the sandbox; returns (process, env). Banner (stderr) goes to a temp file."""
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        [binary, "sandbox", "serve", "--tenants", "2", "--users", "3", "--print-env"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    env, ready = {}, threading.Event()

    def read():
        for line in proc.stdout:
            line = line.strip()
            if line.startswith("export "):
                name, _, value = line[len("export ") :].partition("=")
                env[name] = value
            elif line.startswith("# ready"):
                ready.set()
                return

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(30):
        proc.kill()
        log.seek(0)
        raise RuntimeError(f"sandbox did not print '# ready' within 30 s:\n{log.read()}")
    needed = {"AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID",
              "TENANTFORM_GRAPH_URL", "TENANTFORM_LOGIN_URL"}
    if not needed <= env.keys():
        proc.kill()
        raise RuntimeError(f"sandbox printed {sorted(env)}, missing {sorted(needed - env.keys())}")
    return proc, env


def stop_sandbox(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Checks:
    def __init__(self):
        self.tried = 0
        self.passed = 0

    async def run(self, name, check):
        """Runs one check; returns its value, or None when it failed."""
        self.tried += 1
        try:
            value = await check()
        except Exception as e:  # noqa: BLE001 - every failure is reported, then counted
            detail = describe(e)
            print(f"FAIL {name}: {detail}", flush=True)
            if os.environ.get("GRAPH_SDK_CHECK_TRACE"):
                traceback.print_exc()
            return None
        self.passed += 1
        print(f"ok   {name}", flush=True)
        return value if value is not None else True


def describe(e):
    if isinstance(e, ODataError):
        err = e.error
        return (f"ODataError {e.response_status_code} "
                f"{err.code if err else None}: {err.message if err else e}")
    return f"{type(e).__name__}: {e}"


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


async def expect_odata_error(call, status, code):
    try:
        await call()
    except ODataError as e:
        got = e.error.code if e.error else None
        expect(e.response_status_code == status and got == code,
               f"expected {status} {code}, got {e.response_status_code} {got}")
        return e
    raise AssertionError(f"expected ODataError {status} {code}, got success")


def users_config(headers=None, **query):
    params = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(**query)
    config = RequestConfiguration(query_parameters=params)
    for name, value in (headers or {}).items():
        config.headers.add(name, value)
    return config


async def main(env):
    checks = Checks()
    partner = graph_client(env, env["AZURE_TENANT_ID"])

    # The partner tenant: its organization and its customers.
    async def partner_organization():
        orgs = await partner.organization.get()
        expect((orgs.additional_data or {}).get("@odata.context"), "no @odata.context")
        expect([o.id for o in orgs.value] == [env["AZURE_TENANT_ID"]], f"ids {orgs.value}")
    await checks.run("GET /organization (partner)", partner_organization)

    async def contracts():
        page = await partner.contracts.get()
        expect(len(page.value) == 2, f"{len(page.value)} contracts")
        expect(all(c.customer_id and c.default_domain_name for c in page.value), "fields")
        return [str(c.customer_id) for c in page.value]
    customers = await checks.run("GET /contracts", contracts) or []
    if not customers:
        print("no customer tenants: the remaining checks need one", flush=True)
        return checks

    customer_id = customers[0]
    graph = graph_client(env, customer_id)

    async def customer_organization():
        orgs = await graph.organization.get()
        expect(str(orgs.value[0].id) == customer_id, "wrong tenant")
        expect(orgs.value[0].verified_domains, "no verifiedDomains")
    await checks.run("GET /organization (customer)", customer_organization)

    # Users: $select, $top and paging with PageIterator over @odata.nextLink.
    async def paging():
        first = await graph.users.get(users_config(select=["id", "displayName"], top=2))
        expect(first.odata_next_link, "no @odata.nextLink on a first page of 2")
        seen = []

        def collect(user):
            seen.append(user)
            return True
        iterator = PageIterator(first, graph.request_adapter)
        await iterator.iterate(collect)
        expect(len(seen) == 3, f"{len(seen)} users over the pages, not 3")
        expect(len({u.id for u in seen}) == 3, "a user came twice")
        expect(all(u.display_name and u.user_principal_name is None for u in seen),
               "$select not honoured")
        return seen
    members = await checks.run("GET /users $select $top + PageIterator", paging) or []

    async def get_user():
        user = await graph.users.by_user_id(members[0].id).get()
        expect(user.id == members[0].id and user.user_principal_name, "wrong user")
    await checks.run("GET /users/{id}", get_user)

    email = f"sdk-{uuid.uuid4().hex[:8]}@fabrikam.example"

    async def invite():
        body = Invitation(
            invited_user_email_address=email,
            invite_redirect_url="https://myapps.microsoft.com",
            invited_user_display_name="SDK Guest",
            send_invitation_message=False,
        )
        made = await graph.invitations.post(body)
        expect(made.status == "PendingAcceptance", f"status {made.status}")
        expect(made.invited_user and made.invited_user.id, "no invitedUser.id")
        return made.invited_user.id
    guest_id = await checks.run("POST /invitations (typed body, @odata.type)", invite)

    async def guest_by_type():
        page = await graph.users.get(users_config(filter="userType eq 'Guest'",
                                                  select=["id", "userType", "mail"]))
        expect([u.id for u in page.value] == [guest_id], f"{[u.id for u in page.value]}")
    await checks.run("GET /users $filter userType eq 'Guest'", guest_by_type)

    async def guest_by_mail():
        page = await graph.users.get(users_config(filter=f"mail eq '{email}'"))
        expect([u.id for u in page.value] == [guest_id], "not found by mail")
    await checks.run("GET /users $filter mail eq", guest_by_mail)

    async def guest_by_other_mails():
        page = await graph.users.get(users_config(filter=f"otherMails/any(m:m eq '{email}')"))
        expect([u.id for u in page.value] == [guest_id], "not found by otherMails")
    await checks.run("GET /users $filter otherMails/any(...)", guest_by_other_mails)

    async def get_guest_selected():
        params = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
            select=["id", "externalUserState", "userType", "creationType"])
        user = await graph.users.by_user_id(guest_id).get(
            RequestConfiguration(query_parameters=params))
        expect(user.external_user_state == "PendingAcceptance", f"{user.external_user_state}")
        expect(user.user_type == "Guest" and user.creation_type == "Invitation", "guest fields")
    await checks.run("GET /users/{id} $select externalUserState", get_guest_selected)

    async def patch_user():
        await graph.users.by_user_id(guest_id).patch(User(display_name="SDK Guest (renamed)"))
        user = await graph.users.by_user_id(guest_id).get()
        expect(user.display_name == "SDK Guest (renamed)", f"{user.display_name}")
    await checks.run("PATCH /users/{id} (typed body, @odata.type)", patch_user)

    # Role definitions and assignments.
    async def role_definitions():
        page = await graph.role_management.directory.role_definitions.get()
        expect(any(r.template_id == GLOBAL_READER for r in page.value), "no Global Reader")
        role = await graph.role_management.directory.role_definitions.by_unified_role_definition_id(
            GLOBAL_READER).get()
        expect(role.display_name == "Global Reader", f"{role.display_name}")
    await checks.run("GET roleDefinitions + roleDefinitions/{id}", role_definitions)

    async def assign():
        made = await graph.role_management.directory.role_assignments.post(UnifiedRoleAssignment(
            principal_id=guest_id, role_definition_id=GLOBAL_READER, directory_scope_id="/"))
        expect(made.id and made.principal_id == guest_id, "assignment fields")
        return made.id
    assignment_id = await checks.run("POST roleAssignments (typed body)", assign)

    async def duplicate():
        await expect_odata_error(
            lambda: graph.role_management.directory.role_assignments.post(UnifiedRoleAssignment(
                principal_id=guest_id, role_definition_id=GLOBAL_READER, directory_scope_id="/")),
            400, "Request_BadRequest")
    await checks.run("POST roleAssignments duplicate -> 400 Request_BadRequest", duplicate)

    async def list_assignments():
        params = RoleAssignmentsRequestBuilder.RoleAssignmentsRequestBuilderGetQueryParameters(
            filter=f"principalId eq '{guest_id}'", expand=["principal"])
        page = await graph.role_management.directory.role_assignments.get(
            RequestConfiguration(query_parameters=params))
        expect([a.id for a in page.value] == [assignment_id], "assignment not listed")
        principal = page.value[0].principal
        expect(isinstance(principal, User), f"principal parsed as {type(principal).__name__}")
        expect(principal.id == guest_id, "wrong principal")
    await checks.run("GET roleAssignments $filter $expand=principal", list_assignments)

    async def get_assignment():
        got = await graph.role_management.directory.role_assignments.by_unified_role_assignment_id(
            assignment_id).get()
        expect(got.role_definition_id == GLOBAL_READER, "wrong role")
    await checks.run("GET roleAssignments/{id}", get_assignment)

    async def delete_assignment():
        await graph.role_management.directory.role_assignments.by_unified_role_assignment_id(
            assignment_id).delete()
        await expect_odata_error(
            lambda: graph.role_management.directory.role_assignments
            .by_unified_role_assignment_id(assignment_id).get(),
            404, "Request_ResourceNotFound")
    await checks.run("DELETE roleAssignments/{id}", delete_assignment)

    # Delete, deleted items, restore.
    async def delete_user():
        await graph.users.by_user_id(guest_id).delete()
        await expect_odata_error(lambda: graph.users.by_user_id(guest_id).get(),
                                 404, "Request_ResourceNotFound")
    await checks.run("DELETE /users/{id}", delete_user)

    async def deleted_items():
        page = await graph.directory.deleted_items.graph_user.get()
        expect(isinstance(page, UserCollectionResponse), f"{type(page).__name__}")
        expect([u.id for u in page.value] == [guest_id], "deleted guest not listed")
        expect(page.value[0].deleted_date_time is not None, "no deletedDateTime")
    await checks.run("GET directory/deletedItems/graph.user (the SDK casts by alias)", deleted_items)

    async def restore():
        restored = await graph.directory.deleted_items.by_directory_object_id(
            guest_id).restore.post()
        expect(restored.id == guest_id, "wrong object restored")
        expect(isinstance(restored, User), f"restored parsed as {type(restored).__name__}")
        user = await graph.users.by_user_id(guest_id).get()
        expect(user.id == guest_id, "restored user not readable")
    await checks.run("POST directory/deletedItems/{id}/restore", restore)

    # $batch with dependsOn, through the SDK's batch support.
    async def batch():
        get_guest = GraphBatchItem(graph.users.by_user_id(guest_id).to_get_request_information(),
                                   id="guest")
        org = GraphBatchItem(graph.organization.to_get_request_information(), id="org",
                             depends_on=[get_guest])
        content = BatchRequestContent({"guest": get_guest, "org": org})
        answer = await graph.batch.post(content)
        statuses = answer.get_response_status_codes()
        expect(statuses == {"guest": 200, "org": 200}, f"statuses {statuses}")
        expect(all(r.content_type and r.content_type.startswith("application/json")
                   for r in answer.responses.values()), "inner content-type")
    await checks.run("POST /$batch dependsOn (BatchRequestBuilder)", batch)

    async def batch_typed_bodies():
        get_guest = GraphBatchItem(graph.users.by_user_id(guest_id).to_get_request_information(),
                                   id="guest")
        org = GraphBatchItem(graph.organization.to_get_request_information(), id="org",
                             depends_on=["guest"])
        answer = await batch_bodies(graph, BatchRequestContent({"guest": get_guest, "org": org}))
        expect(parse_as(answer["guest"]["body"], User).id == guest_id, "guest body")
        orgs = parse_as(answer["org"]["body"], OrganizationCollectionResponse)
        expect(str(orgs.value[0].id) == customer_id, "org body")
    await checks.run("POST /$batch bodies parse as typed models", batch_typed_bodies)

    async def batch_failed_dependency():
        missing = GraphBatchItem(
            graph.users.by_user_id(str(uuid.uuid4())).to_get_request_information(), id="1")
        after = GraphBatchItem(graph.organization.to_get_request_information(), id="2",
                               depends_on=[missing])
        answer = await graph.batch.post(BatchRequestContent({"1": missing, "2": after}))
        statuses = answer.get_response_status_codes()
        expect(statuses == {"1": 404, "2": 424}, f"statuses {statuses}")
    await checks.run("POST /$batch failed dependency -> 424", batch_failed_dependency)

    async def batch_write():
        info = graph.users.by_user_id(guest_id).to_patch_request_information(
            User(display_name="SDK Guest (batch)"))
        patch = GraphBatchItem(info, id="patch")
        read = GraphBatchItem(graph.users.by_user_id(guest_id).to_get_request_information(),
                              id="read", depends_on=[patch])
        answer = await graph.batch.post(BatchRequestContent({"patch": patch, "read": read}))
        statuses = answer.get_response_status_codes()
        expect(statuses == {"patch": 204, "read": 200}, f"statuses {statuses}")
        user = await graph.users.by_user_id(guest_id).get()
        expect(user.display_name == "SDK Guest (batch)", f"{user.display_name}")
    await checks.run("POST /$batch PATCH with @odata.type body + dependsOn", batch_write)

    async def batch_absolute_url():
        # The SDK's own item keeps the absolute URL; Graph answers 400 for it
        # (msgraph-sdk-python#1015), and so does the sandbox.
        info = graph.organization.to_get_request_information()
        info.path_parameters["baseurl"] = graph.request_adapter.base_url
        item = BatchRequestItem(info, id="abs")
        expect(item.url.startswith("http"), f"SDK item URL {item.url} is not absolute")
        answer = await graph.batch.post(BatchRequestContent({"abs": item}))
        statuses = answer.get_response_status_codes()
        expect(statuses == {"abs": 400}, f"statuses {statuses}")
    await checks.run("POST /$batch absolute inner URL -> 400 (as Graph)", batch_absolute_url)

    # Advanced queries.
    async def advanced():
        page = await graph.users.get(users_config(
            headers={"ConsistencyLevel": "eventual"}, filter="userType ne 'Member'", count=True))
        expect(page.odata_count == 1, f"@odata.count {page.odata_count}")
        expect([u.id for u in page.value] == [guest_id], "advanced query result")
    await checks.run("GET /users ne + ConsistencyLevel eventual + $count", advanced)

    async def advanced_without_header():
        await expect_odata_error(
            lambda: graph.users.get(users_config(filter="userType ne 'Member'", count=True)),
            400, "Request_UnsupportedQuery")
    await checks.run("GET /users ne without header -> 400 Request_UnsupportedQuery",
                     advanced_without_header)

    # Errors.
    async def not_found():
        e = await expect_odata_error(lambda: graph.users.by_user_id(str(uuid.uuid4())).get(),
                                     404, "Request_ResourceNotFound")
        expect(e.error.message, "no message")
        expect(e.error.inner_error is not None and e.error.inner_error.request_id,
               "no innerError.request-id")
    await checks.run("GET /users/{unknown} -> 404 Request_ResourceNotFound", not_found)

    async def bad_request():
        await expect_odata_error(
            lambda: graph.users.get(users_config(top=1000)), 400, "Request_BadRequest")
    await checks.run("GET /users $top=1000 -> 400 Request_BadRequest", bad_request)

    return checks


def run(binary):
    proc, env = start_sandbox(binary)
    try:
        checks = asyncio.run(main(env))
        if os.environ.get("GRAPH_SDK_CHECK_TRACE"):
            print(httpx.get(f"{env['TENANTFORM_LOGIN_URL']}/_sandbox/requests").text)
    finally:
        stop_sandbox(proc)
    print(f"graph-sdk-check: {checks.tried} checks, {checks.passed} passed", flush=True)
    return 0 if checks.tried and checks.passed == checks.tried else 1


if __name__ == "__main__":
    binary = (sys.argv[1] if len(sys.argv) > 1
              else os.environ.get("TENANTFORM_BIN", "target/release/tenantform"))
    sys.exit(run(binary))
