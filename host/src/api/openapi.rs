//! The OpenAPI 3.1 document served at `/openapi.json`. Operations come from the handlers'
//! `#[utoipa::path]` annotations through the same route list the router is built from (see
//! [`super::routes`]), so nothing served is undocumented. Written here: the document's header, the
//! bearer token scheme, the plant bodies a client writes (built from [`super::validate`]'s own limits,
//! since bodies are read as JSON and checked there field by field), the events of the live stream,
//! and the rule that every error answer is a problem document.

use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{
    AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

use super::problem::{PROBLEM_JSON, Problem};
use super::validate::{
    ATTRIBUTE_KEY_MAX_BYTES, ATTRIBUTE_VALUE_MAX_BYTES, ATTRIBUTES_MAX, NAME_MAX_CHARS,
    REGION_PATTERN,
};
use crate::domain::{Change, Fuel, Status};

/// The document's header and what no handler annotation says.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "plant-monitor",
        description = "A registry of power plants whose every change is journaled, run through \
            WebAssembly plugins and delivered to HTTP sinks. Errors are RFC 9457 problem documents.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(PlantInput, PlantPatch, Problem)),
    tags(
        (name = "plants", description = "The registry: create, read, list, replace, patch, delete"),
        (name = "journal", description = "Every change to a plant, by any writer, in commit order"),
        (name = "operations", description = "Sinks, deliveries, leases, plugins and stats"),
        (name = "probes", description = "Liveness, readiness and metrics"),
    )
)]
pub struct Document;

/// Text that holds no U+0000, which PostgreSQL text cannot store.
const NO_NUL: &str = "^[^\\u0000]*$";

/// A plant as a client writes it (POST, PUT): the fields the server owns may be sent back and are
/// ignored.
pub struct PlantInput;

/// A JSON merge patch (RFC 7396) of a plant: the fields to change; `null` removes an optional field.
pub struct PlantPatch;

impl utoipa::ToSchema for PlantInput {}

impl utoipa::PartialSchema for PlantInput {
    fn schema() -> RefOr<Schema> {
        plant_body(false)
            .required("name")
            .required("region")
            .required("fuel")
            .required("capacity_mw")
            .description(Some(
                "A plant as a client writes it; `id`, `version`, `created_at` and `updated_at` \
                 may be sent back as fetched and are ignored.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for PlantPatch {}

impl utoipa::PartialSchema for PlantPatch {
    fn schema() -> RefOr<Schema> {
        plant_body(true)
            .description(Some(
                "A JSON merge patch (RFC 7396): the fields to change; null removes an optional \
                 field. The patched plant must be valid as a whole.",
            ))
            .into()
    }
}

/// One event of the live stream, as a Server-Sent Events client reads it: an OpenAPI 3.1 document
/// describes each event of a `text/event-stream` answer with its `schema` (3.2 names it `itemSchema`),
/// the event's fields as properties and `data` as a string holding JSON.
pub struct StreamEvent;

impl utoipa::ToSchema for StreamEvent {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            <Change as utoipa::ToSchema>::name().into_owned(),
            <Change as utoipa::PartialSchema>::schema(),
        ));
        <Change as utoipa::ToSchema>::schemas(schemas);
    }
}

impl utoipa::PartialSchema for StreamEvent {
    fn schema() -> RefOr<Schema> {
        let entry = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .content_media_type("application/json")
                .content_schema(Some(Ref::from_schema_name(
                    <Change as utoipa::ToSchema>::name(),
                )))
                .description(Some(description))
        };
        let event = |name: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([name]))
        };
        let change = ObjectBuilder::new()
            .property("event", event("change"))
            .property(
                "id",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[0-9]+$"))
                    .description(Some("The entry's `seq`: send it back as `Last-Event-ID`.")),
            )
            .property(
                "data",
                entry("The entry, as `/v1/changes` shows it when sent."),
            )
            .required("event")
            .required("id")
            .required("data")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        // No id is sent: an outcome leaves the position to resume from where the last change put it.
        // An SSE client keeps reporting that change's id with the outcome (the event stream format
        // carries the last event id over to events without one), so the schema allows it.
        let outcome = ObjectBuilder::new()
            .property("event", event("outcome"))
            .property(
                "id",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[0-9]+$"))
                    .description(Some(
                        "Not sent: the id of the last `change` event, which an SSE client \
                         carries over to an event without one.",
                    )),
            )
            .property(
                "data",
                entry("An entry sent before without an outcome, now with it."),
            )
            .required("event")
            .required("data")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        OneOfBuilder::new()
            .item(change)
            .item(outcome)
            .description(Some(
                "A `change` event when an entry is journaled; an `outcome` event when an entry sent \
                 without an outcome has been processed.",
            ))
            .into()
    }
}

/// The writable fields with the limits `validate` enforces; in a patch every field may be null
/// (a required one then makes the result invalid, which is a 422).
fn plant_body(patch: bool) -> ObjectBuilder {
    let required = |types: Type| -> SchemaType {
        if patch {
            SchemaType::from_iter([types, Type::Null])
        } else {
            SchemaType::new(types)
        }
    };
    let optional = |types: Type| SchemaType::from_iter([types, Type::Null]);
    let text = ObjectBuilder::new()
        .schema_type(required(Type::String))
        .min_length(Some(1))
        .max_length(Some(NAME_MAX_CHARS))
        .pattern(Some(NO_NUL));
    let words = |all: &[&str], types: SchemaType| {
        let mut values: Vec<serde_json::Value> = all.iter().map(|w| (*w).into()).collect();
        if patch || matches!(&types, SchemaType::Array(_)) {
            values.push(serde_json::Value::Null);
        }
        ObjectBuilder::new()
            .schema_type(types)
            .enum_values(Some(values))
    };
    let degrees = |limit: f64| {
        ObjectBuilder::new()
            .schema_type(optional(Type::Number))
            .minimum(Some(-limit))
            .maximum(Some(limit))
    };
    // In a merge patch, an attribute set to null is removed.
    let attribute_value = ObjectBuilder::new()
        .schema_type(required(Type::String))
        .max_length(Some(ATTRIBUTE_VALUE_MAX_BYTES))
        .pattern(Some(NO_NUL))
        .description(Some(format!(
            "At most {ATTRIBUTE_VALUE_MAX_BYTES} bytes of UTF-8."
        )));
    let attribute_key = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(ATTRIBUTE_KEY_MAX_BYTES))
        .pattern(Some(NO_NUL));
    ObjectBuilder::new()
        .property("name", text)
        .property(
            "region",
            ObjectBuilder::new()
                .schema_type(required(Type::String))
                .pattern(Some(REGION_PATTERN)),
        )
        .property("fuel", words(Fuel::ALL, required(Type::String)))
        .property(
            "capacity_mw",
            ObjectBuilder::new()
                .schema_type(required(Type::Number))
                .minimum(Some(0.0)),
        )
        .property(
            "output_mw",
            ObjectBuilder::new().schema_type(optional(Type::Number)),
        )
        .property("status", words(Status::ALL, optional(Type::String)))
        .property("latitude", degrees(90.0))
        .property("longitude", degrees(180.0))
        .property(
            "attributes",
            ObjectBuilder::new()
                .schema_type(optional(Type::Object))
                .max_properties(Some(ATTRIBUTES_MAX))
                .property_names(Some(attribute_key))
                .additional_properties(Some(AdditionalProperties::RefOr(attribute_value.into()))),
        )
        .property("id", ObjectBuilder::new().read_only(true))
        .property("version", ObjectBuilder::new().read_only(true))
        .property("created_at", ObjectBuilder::new().read_only(true))
        .property("updated_at", ObjectBuilder::new().read_only(true))
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

/// Adds what holds for every operation, written once, to a document whose operations are all in:
/// error answers are problem documents, any operation may fail on the server's side, and those
/// under `/v1` may ask for the bearer token.
pub fn add_conventions(document: &mut OpenApi) {
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    for (path, item) in document.paths.paths.iter_mut() {
        let guarded = path.starts_with("/v1");
        for operation in operations(item) {
            conventions(operation, guarded);
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

fn conventions(operation: &mut Operation, guarded: bool) {
    let responses = &mut operation.responses.responses;
    if guarded {
        responses.entry("401".into()).or_insert_with(|| {
            ResponseBuilder::new()
                .description("The bearer token is missing or wrong (only when `api_token` is set).")
                .into()
        });
        operation.security = Some(vec![
            SecurityRequirement::default(),
            SecurityRequirement::new("bearer", Vec::<String>::new()),
        ]);
    }
    responses.entry("500".into()).or_insert_with(|| {
        ResponseBuilder::new()
            .description("The server failed; the cause is logged, never answered.")
            .into()
    });
    let problem = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(
            <Problem as utoipa::ToSchema>::name(),
        )))
        .build();
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(response) = response
            && !status.starts_with('2')
            && response.content.is_empty()
        {
            response
                .content
                .insert(PROBLEM_JSON.into(), problem.clone().into());
        }
    }
}
