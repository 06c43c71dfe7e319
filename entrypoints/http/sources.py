"""The Sources API: thin handlers that parse, call one use case and shape the response."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from typing import Annotated, Any
from urllib.parse import urlencode

import anyio
import anyio.to_thread
import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import ResponseHeader, State
from litestar.enums import MediaType
from litestar.params import FromPath, HeaderParameter, JSONBody, Parameter
from litestar.response import Stream

from application.history import (
    HISTORY_LIMIT_DEFAULT,
    GetSchemaHistory,
    InspectSchema,
    InspectSchemaQuery,
    SchemaHistoryQuery,
)
from application.sources import (
    CheckNewConnection,
    CheckSourceConnection,
    CheckSourceConnectionQuery,
    DeleteSource,
    DeleteSourceCommand,
    GetSource,
    GetSourceQuery,
    ListSources,
    ListSourcesQuery,
    RegisterSource,
    StreamSources,
    UpdateSource,
)
from domain.keys import Principal
from domain.sources import (
    TAG_MAX,
    TAGS_MAX,
    IfMatch,
    PageKey,
    SourceFilter,
    SourcePage,
    SourceSummary,
    etag,
    parse_if_match,
    parse_source_id,
)
from entrypoints.cursors import (
    decode_cursor,
    decode_history_cursor,
    encode_cursor,
    encode_history_cursor,
)
from entrypoints.http.bodies import JSON
from entrypoints.http.openapi import (
    PATCH_MEDIA_TYPES,
    MergePatchOperation,
    responses,
    tag_schema,
)
from entrypoints.http.query import check_query
from entrypoints.http.responses import JSONResponse
from entrypoints.http.use_cases import use_cases
from entrypoints.presenters import (
    ConnectionCheckOut,
    SchemaOut,
    SnapshotOut,
    SourceListItem,
    SourceRecord,
    SourceStampOut,
    change_out,
)
from entrypoints.requests import (
    REQUEST_TYPES,
    ConnectionTestRequest,
    RegisterSourceRequest,
    update_command,
)

AuthRequest = Request[Principal, str, Any]
NEXT_PAGE = ResponseHeader(
    name="Link",
    description='The next page, as `<url>; rel="next"`, when there is one',
    documentation_only=True,
)
ETAG_HEADER = ResponseHeader(
    name="ETag", description='The source\'s version, as `"<version>"`', documentation_only=True
)
IF_MATCH = HeaderParameter(
    name="If-Match",
    description='Change only at this version (`"3"`) or if the source exists (`*`); else 412'
    ' (a weak tag, `W/"3"`, never matches)',
    required=False,
)
VERIFY = Parameter(
    description="Test the connection first; if the test fails answer 422 and store nothing"
)


def _is_request_type(kind: Any) -> bool:
    return kind in REQUEST_TYPES


def _decode_request(kind: Any, value: Any) -> Any:
    # An `InvalidInput` raised here goes to the problem handlers as it is: a 400 naming the fields.
    return kind.decode(value)


def _if_match(raw: str | None) -> IfMatch | None:
    return None if raw is None else parse_if_match(raw)


# Pages up to this size are shaped and encoded on the event loop; bigger ones on a thread.
INLINE_PAGE_MAX = 100


# An encoded listing: the key of the page after it (None: it was the last) and its JSON.
Listing = tuple[PageKey | None, bytes]


class _Making:
    """A listing being made: whoever asks for it meanwhile waits for this one."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.value: Listing | None = None
        self.error: Exception | None = None


class ListingCache:
    """The last encoded listings, by (store revision, filter, limit, cursor), at most
    `max_bytes` of them in all (the oldest leave first; a bigger listing is not kept).

    A key holds the revision read before the listing, so an entry is never older than what
    its key says; a change to any source moves the revision, and the old entries are never
    asked for again (they leave as new ones come). A listing is made once per key: requests
    that ask for it while it is being made wait for it, so that ten clients listing at once
    after a change cost one listing, not ten.
    """

    def __init__(self, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._cached: dict[Hashable, Listing] = {}
        self._bytes = 0
        self._making: dict[Hashable, _Making] = {}

    @property
    def kept_bytes(self) -> int:
        """The bytes of the listings kept now."""
        return self._bytes

    def get(self, key: Hashable) -> Listing | None:
        return self._cached.get(key)

    def put(self, key: Hashable, value: Listing) -> None:
        size = len(value[1])
        if size > self.max_bytes:
            return
        if (old := self._cached.pop(key, None)) is not None:
            self._bytes -= len(old[1])
        while self._cached and self._bytes + size > self.max_bytes:
            self._bytes -= len(self._cached.pop(next(iter(self._cached)))[1])
        self._cached[key] = value
        self._bytes += size

    async def get_or_make(self, key: Hashable, make: Callable[[], Awaitable[Listing]]) -> Listing:
        """The listing of `key`: kept, or awaited from the request making it, or made now."""
        while (making := self._making.get(key)) is not None:
            await making.done.wait()
            if making.error is not None:
                raise making.error
            if making.value is not None:
                return making.value
            # Its maker was cancelled: look again.
        kept = self._cached.get(key)
        if kept is not None:
            return kept
        making = self._making[key] = _Making()
        try:
            making.value = await make()
        except Exception as exc:
            making.error = exc
            raise
        finally:
            del self._making[key]
            making.done.set()
        self.put(key, making.value)
        return making.value


# Items msgspec encodes in one call: a call holds the GIL until it returns, and thousands of
# items take tens of milliseconds, while the event loop waits for the GIL to answer anyone.
ENCODE_BATCH = 500


def json_array(items: Sequence[Any], batch: int = ENCODE_BATCH) -> bytes:
    """msgspec's JSON of the list, encoded `batch` items at a time, the same bytes as at once."""
    if len(items) <= batch:
        return msgspec.json.encode(items)
    parts = [msgspec.json.encode(items[i : i + batch])[1:-1] for i in range(0, len(items), batch)]
    return b"[" + b",".join(parts) + b"]"


def _items_json(chunk: Sequence[SourceSummary]) -> bytes:
    """The chunk's items as they stand inside the listing's JSON array (no brackets)."""
    return json_array([SourceListItem.of(s) for s in chunk])[1:-1]


async def _streamed(state: State, stream_sources: StreamSources, query: ListSourcesQuery) -> Any:
    """The whole listing as one JSON array, streamed a chunk at a time as the store reads it
    (the same bytes as at once): memory holds a chunk, not the registry. The first chunk is
    read before the answer starts, so a store that cannot answer is still a 503."""
    chunks = await stream_sources(query)
    try:
        first = await anext(chunks, None)
    except BaseException:
        await chunks.aclose()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            chunk, separator = first, b"["
            while chunk is not None:
                # Shaping and encoding a chunk on a thread, a few at a time (the GIL is shared).
                async with state.listing_limiter:
                    encoded = await anyio.to_thread.run_sync(_items_json, chunk)
                yield separator + encoded
                chunk, separator = await anext(chunks, None), b","
            yield b"[]" if separator == b"[" else b"]"
        finally:
            await chunks.aclose()

    return Stream(body(), media_type=MediaType.JSON)


def _encoded(page: SourcePage) -> Listing:
    return page.next_key, json_array([SourceListItem.of(s) for s in page.sources])


async def _listed(
    state: State, list_sources: ListSources, query: ListSourcesQuery
) -> tuple[PageKey | None, Any]:
    """The key of the page after this one (None: the last) and the page to send: a small page
    as items, a full listing as its JSON."""
    if query.limit is not None and query.limit <= INLINE_PAGE_MAX:
        page = await list_sources(query)
        return page.next_key, [SourceListItem.of(s) for s in page.sources]

    # Thousands of rows: shaping and encoding them would hold the event loop (and every other
    # request) for tens of milliseconds, so that runs on a thread, a few listings at a time so
    # that they do not crowd the loop out of the GIL (the store reads them off the loop too).
    # An encoded listing is kept while the store's revision says nothing changed, and made once
    # for all the requests that ask for it meanwhile.
    async def make() -> Listing:
        async with state.listing_limiter:
            page = await list_sources(query)
            return await anyio.to_thread.run_sync(_encoded, page)

    revision = await list_sources.revision(query.actor)
    if revision is None:
        return await make()
    cache: ListingCache = state.listings
    return await cache.get_or_make((revision, query.filter, query.limit, query.after), make)


class SourcesController(Controller):
    """`/v1/sources`: register, list, get, inspect, read the schema history, delete."""

    path = "/v1/sources"
    tags = ["sources"]
    # A body declared as one of the request types is decoded by that type (entrypoints/requests.py),
    # as the CLI decodes its files: the same input gets the same 400 either way.
    type_decoders = [(_is_request_type, _decode_request)]

    @post(
        "/",
        opt={"scope": RegisterSource.required_scope, "media_types": JSON},
        status_code=201,
        summary="Register a source",
        responses=responses(400, 401, 403, 409, 413, 415, 422, 503),
        response_headers=[
            ResponseHeader(
                name="Location", description="URL of the new source", documentation_only=True
            ),
            ETAG_HEADER,
        ],
    )
    async def register(
        self,
        request: AuthRequest,
        data: JSONBody[RegisterSourceRequest],
        verify: Annotated[bool, VERIFY] = False,
    ) -> Response[SourceRecord]:
        # A typo such as `?verfy=true` must not skip the test silently.
        check_query(request.query_params, scalars=("verify",))
        source = await use_cases(request).register_source(data.command(request.user, verify))
        return Response(
            SourceRecord.of(source),
            status_code=201,
            headers={"Location": f"{self.path}/{source.id}", "ETag": etag(source.version)},
        )

    @post(
        "/test",
        opt={"scope": CheckNewConnection.required_scope, "media_types": JSON},
        status_code=200,
        summary="Test a connection before registering it (nothing is stored)",
        responses=responses(400, 401, 403, 413, 415),
    )
    async def test_new_connection(
        self,
        request: AuthRequest,
        data: JSONBody[ConnectionTestRequest],
    ) -> ConnectionCheckOut:
        check_query(request.query_params)
        command = data.command(request.user)
        return ConnectionCheckOut.of(await use_cases(request).check_new_connection(command))

    @post(
        "/{source_id:str}/test",
        opt={"scope": CheckSourceConnection.required_scope},
        status_code=200,
        summary="Test a saved source's connection (200 whatever the backend says)",
        responses=responses(400, 401, 403, 404, 503),
    )
    async def test_connection(
        self,
        request: AuthRequest,
        source_id: FromPath[str],
    ) -> ConnectionCheckOut:
        check_query(request.query_params)
        query = CheckSourceConnectionQuery(request.user, parse_source_id(source_id))
        return ConnectionCheckOut.of(await use_cases(request).check_source_connection(query))

    @get(
        "/",
        opt={"scope": ListSources.required_scope},
        summary="List sources (summaries, oldest first)",
        responses=responses(400, 401, 403, 503),
        response_headers=[NEXT_PAGE],
    )
    async def list_sources(
        self,
        request: AuthRequest,
        tag: Annotated[
            list[str] | None,
            Parameter(
                description="Only sources with every one of these tags",
                max_items=TAGS_MAX,
                schema_extra={"items": tag_schema()},
            ),
        ] = None,
        source_type: Annotated[str | None, Parameter(description="Only this type")] = None,
        name_prefix: Annotated[str | None, Parameter(description="Names starting so")] = None,
        limit: Annotated[int | None, Parameter(ge=1, le=1000, description="Page size")] = None,
        cursor: Annotated[
            str | None, Parameter(description="Opaque: from the previous page's Link header")
        ] = None,
    ) -> Response[list[SourceListItem]]:
        # A typo such as `?tags=x` must not silently list everything.
        check_query(
            request.query_params,
            scalars=("source_type", "name_prefix", "limit", "cursor"),
            repeatable=("tag",),
            integers=("limit",),
            lengths={"tag": TAG_MAX},
        )
        tags = tuple(tag or ())
        query = ListSourcesQuery(
            actor=request.user,
            filter=SourceFilter(tags=tags, source_type=source_type, name_prefix=name_prefix),
            limit=limit,
            after=decode_cursor(cursor) if cursor is not None else None,
        )
        if limit is None and cursor is None:
            return await _streamed(request.app.state, use_cases(request).stream_sources, query)  # type: ignore[no-any-return]
        next_key, content = await _listed(request.app.state, use_cases(request).list_sources, query)
        headers = {}
        if next_key is not None:
            following = [("tag", t) for t in tags]
            following += [
                (k, v)
                for k, v in (("source_type", source_type), ("name_prefix", name_prefix))
                if v is not None
            ]
            following += [("limit", str(limit)), ("cursor", encode_cursor(next_key))]
            headers["Link"] = f'<{self.path}?{urlencode(following)}>; rel="next"'
        return Response(content, headers=headers)

    @get(
        "/{source_id:str}",
        opt={"scope": GetSource.required_scope},
        summary="Get a source, connection included",
        responses=responses(400, 401, 403, 404, 503),
        response_headers=[ETAG_HEADER],
    )
    async def get_source(self, request: AuthRequest) -> Response[SourceRecord]:
        # The id straight from the router's path parameters: as a parameter of the handler it
        # would cost every GET a pass through Litestar's parameter model (the OpenAPI document
        # has it from the path either way).
        if request.scope["query_string"]:  # no parameter is known: parse only what came
            check_query(request.query_params)
        query = GetSourceQuery(request.user, parse_source_id(request.path_params["source_id"]))
        source = await use_cases(request).get_source(query)
        return JSONResponse(SourceRecord.of(source), headers={"ETag": etag(source.version)})

    @patch(
        "/{source_id:str}",
        opt={"scope": UpdateSource.required_scope, "media_types": PATCH_MEDIA_TYPES},
        summary="Update a source with a JSON Merge Patch (RFC 7396)",
        responses=responses(400, 401, 403, 404, 409, 412, 413, 415, 422, 503),
        response_headers=[ETAG_HEADER],
        operation_class=MergePatchOperation,
    )
    async def update_source(
        self,
        request: AuthRequest,
        source_id: FromPath[str],
        if_match: Annotated[str | None, IF_MATCH] = None,
        verify: Annotated[bool, VERIFY] = False,
    ) -> Response[SourceRecord | SourceStampOut]:
        check_query(request.query_params, scalars=("verify",))
        ident = parse_source_id(source_id)
        condition = _if_match(if_match)
        # The body is read here, not declared as `data`: it may come as either media type, and
        # it is decoded (nulls and absent fields apart) after the id and If-Match are parsed.
        # An undecodable one is the 400 every route gives (`TdbRequest.json`).
        changes = await request.json()
        command = update_command(request.user, ident, changes, condition, verify)
        # The record as a GET by this key would show it (only the version without read).
        answer = await use_cases(request).update_source(command)
        return Response(change_out(answer), headers={"ETag": etag(answer.version)})

    @get(
        "/{source_id:str}/schema",
        opt={"scope": InspectSchema.required_scope},
        summary="Inspect the live column schema",
        responses=responses(400, 401, 403, 404, 503),
    )
    async def get_schema(
        self,
        request: AuthRequest,
        source_id: FromPath[str],
    ) -> SchemaOut:
        check_query(request.query_params)
        # The connector bounds the backend call (how many at once, how long): see BackendBounds.
        query = InspectSchemaQuery(request.user, parse_source_id(source_id))
        return SchemaOut.of(await use_cases(request).inspect_schema(query))

    @get(
        "/{source_id:str}/schema/history",
        opt={"scope": GetSchemaHistory.required_scope},
        summary="The schema history: snapshots newest first, with their changes",
        description="A snapshot is stored by an inspection whose columns differ from the"
        " newest one. `changes` compares it with the snapshot before it (empty for the first)."
        " Breaking: `removed`, `type_changed`, and `nullable` from false to true.",
        responses=responses(400, 401, 403, 404, 503),
        response_headers=[NEXT_PAGE],
    )
    async def schema_history(
        self,
        request: AuthRequest,
        source_id: FromPath[str],
        limit: Annotated[
            int, Parameter(ge=1, le=1000, description="Page size")
        ] = HISTORY_LIMIT_DEFAULT,
        cursor: Annotated[
            str | None, Parameter(description="Opaque: from the previous page's Link header")
        ] = None,
    ) -> Response[list[SnapshotOut]]:
        check_query(request.query_params, scalars=("limit", "cursor"), integers=("limit",))
        ident = parse_source_id(source_id)
        query = SchemaHistoryQuery(
            actor=request.user,
            parent_id=ident,
            limit=limit,
            before=decode_history_cursor(cursor, ident) if cursor is not None else None,
        )
        page = await use_cases(request).schema_history(query)
        headers = {}
        if page.next_before is not None:
            following = urlencode(
                [("limit", str(limit)), ("cursor", encode_history_cursor(ident, page.next_before))]
            )
            headers["Link"] = f'<{self.path}/{ident}/schema/history?{following}>; rel="next"'
        return Response([SnapshotOut.of(e) for e in page.entries], headers=headers)

    @delete(
        "/{source_id:str}",
        opt={"scope": DeleteSource.required_scope},
        summary="Delete a source from the registry (the data is not touched)",
        responses=responses(400, 401, 403, 404, 412, 503),
    )
    async def delete_source(
        self,
        request: AuthRequest,
        source_id: FromPath[str],
        if_match: Annotated[str | None, IF_MATCH] = None,
    ) -> None:
        check_query(request.query_params)
        ident = parse_source_id(source_id)
        command = DeleteSourceCommand(request.user, ident, _if_match(if_match))
        await use_cases(request).delete_source(command)
