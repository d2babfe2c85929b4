//! How a settings table and its overlay are written from one list of fields: the
//! [`settings_with_overlay!`] macro that the fleet's settings (`config::FleetConfig`) and
//! a profile entry, which changes some of them (`config::ProfileSpec`), are written
//! with; and [`Interval`], which finds the durations among them (a compressed run
//! divides those).
//!
//! One list gives the table's struct (serde for its scenario table, clap for its flags),
//! its `Default` (the only place a default is written: each flag's `default_value_t`
//! reads it), the overlay's struct (every overlaid field optional, serde names the same)
//! and the overlay applied over a table. Nothing copies a setting by hand.

use crate::units::Span;

/// A setting's value, and the durations in it (none, for anything but a [`Span`]).
pub trait Interval {
    /// The duration this value holds, if it is one.
    fn interval_mut(&mut self) -> Option<&mut Span> {
        None
    }
}

impl Interval for Span {
    fn interval_mut(&mut self) -> Option<&mut Span> {
        Some(self)
    }
}

impl<T: Interval> Interval for Option<T> {
    fn interval_mut(&mut self) -> Option<&mut Span> {
        self.as_mut().and_then(Interval::interval_mut)
    }
}

/// Values that hold no duration.
macro_rules! no_interval {
    ($($ty:ty),* $(,)?) => {
        $(impl Interval for $ty {})*
    };
}

no_interval!(
    bool,
    u32,
    usize,
    f64,
    String,
    Vec<String>,
    crate::units::Share
);
no_interval!(crate::partition::ProcessCount, crate::eas::ProtocolVersion);
no_interval!(super::heartbeat::HeartbeatStrategy, super::radio::RadioKind);
no_interval!(
    super::delivery::DeliveryMode,
    super::delivery::SyncConnection
);

/// A settings table and its overlay from one list of fields.
///
/// ```text
/// settings_with_overlay! {
///     /// The table.
///     #[derive(...)] pub struct Table {
///         /// Only the table has this.
///         #[arg(...)] pub own: Type = default,
///     }
///     overlaid {
///         /// An overlay may change this.
///         #[arg(...)] #[overlay(rename = "key")] pub field: Type = default,
///     }
///     /// The overlay.
///     #[derive(...)] pub struct Overlay {
///         /// A field only the overlay has (its name, its weight), set by `Overlay::entry`.
///         #[serde(...)] pub name: String,
///     }
/// }
/// ```
///
/// `#[overlay(...)]` is a serde attribute of the overlay's field alone.
macro_rules! settings_with_overlay {
    (
        $(#[$meta:meta])*
        pub struct $table:ident {
            $(
                $(#[doc = $doc:literal])*
                #[arg($($arg:tt)*)]
                pub $field:ident: $ty:ty = $default:expr,
            )*
        }
        overlaid {
            $(
                $(#[doc = $odoc:literal])*
                #[arg($($oarg:tt)*)]
                $(#[overlay($($oserde:tt)*)])?
                pub $ofield:ident: $oty:ty = $odefault:expr,
            )*
        }
        $(#[$ometa:meta])*
        pub struct $overlay:ident {
            $(
                $(#[$emeta:meta])*
                pub $efield:ident: $ety:ty,
            )*
        }
    ) => {
        $(#[$meta])*
        pub struct $table {
            $( $(#[doc = $doc])* #[arg($($arg)*)] pub $field: $ty, )*
            $( $(#[doc = $odoc])* #[arg($($oarg)*)] pub $ofield: $oty, )*
        }

        impl Default for $table {
            fn default() -> Self {
                Self {
                    $( $field: $default, )*
                    $( $ofield: $odefault, )*
                }
            }
        }

        impl $table {
            /// Every duration among the settings.
            pub fn intervals_mut(&mut self) -> impl Iterator<Item = &mut $crate::units::Span> {
                use $crate::fleet::settings::Interval as _;
                [
                    $( self.$field.interval_mut(), )*
                    $( self.$ofield.interval_mut(), )*
                ]
                .into_iter()
                .flatten()
            }
        }

        $(#[$ometa])*
        pub struct $overlay {
            $( $(#[$emeta])* pub $efield: $ety, )*
            $(
                $(#[doc = $odoc])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                $(#[serde($($oserde)*)])?
                pub $ofield: Option<$oty>,
            )*
        }

        impl $overlay {
            /// An entry of these fields that changes no setting.
            pub fn entry($($efield: $ety),*) -> Self {
                Self {
                    $( $efield, )*
                    $( $ofield: None, )*
                }
            }

            /// `base` with the settings this entry sets.
            pub fn apply(&self, base: &$table) -> $table {
                let mut settings = base.clone();
                $(
                    if let Some(value) = &self.$ofield {
                        settings.$ofield = value.clone();
                    }
                )*
                settings
            }

            /// Every duration this entry sets.
            pub fn intervals_mut(&mut self) -> impl Iterator<Item = &mut $crate::units::Span> {
                use $crate::fleet::settings::Interval as _;
                [ $( self.$ofield.interval_mut(), )* ].into_iter().flatten()
            }
        }
    };
}

pub(crate) use no_interval;
pub(crate) use settings_with_overlay;
