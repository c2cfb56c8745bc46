//! The domain model every layer shares: plants and the drafts clients write, the journal's changes and
//! their outcomes, the event that flows through the plugins to the sinks, the trace context of a write,
//! and the region rule. It sits at the bottom of the layers and imports none of them, so the store, the
//! plugins and the API can all speak of a plant without depending on one another.

mod change;
mod event;
mod plant;
mod trace;

pub use change::{Change, ChangeKind, Outcome, OutcomeKind};
pub use event::Event;
pub use plant::{Fuel, Plant, PlantDraft, Status, is_region};
pub use trace::TraceParent;

/// Declares a closed set of lowercase words: the enum, its serde form and its text form, from one list.
/// The crate that uses it depends on `serde` and `utoipa` (the OpenAPI schema: a string enum).
#[macro_export]
macro_rules! word_enum {
    ($(#[$meta:meta])* pub enum $ty:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub enum $ty {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $ty {
            /// Every accepted word, in documentation order.
            pub const ALL: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($ty::$variant),)+ _ => None }
            }
        }

        // Written out rather than derived: utoipa's derive cannot read the renames this macro writes.
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some($ty::ALL.iter().copied()))
                    .into()
            }
        }

        impl utoipa::ToSchema for $ty {}
    };
}
