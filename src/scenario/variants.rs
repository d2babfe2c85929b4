//! `[[variants]]`: the same scenario run once per variant, each variant a table of the
//! scenario's own keys laid over it (`[variants.devices] delivery = "sms"`), so the
//! runs share everything else: the fleet, its seed and so its mail, the server, the
//! stages. `orchestrator::variants` runs them and puts their figures side by side.

/// One variant: its name and the keys it changes.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Variant {
    pub name: String,
    /// Any scenario keys (tables merge key by key; other values replace).
    #[serde(flatten)]
    pub changes: toml::Table,
}

/// Keys a variant may not change: what makes the runs comparable, or another kind of
/// multi-run.
const FIXED: [&str; 5] = ["seed", "variants", "sweep", "capacity", "output"];

/// The scenario text of `variant` of the scenario `text`: the variant's keys laid
/// over the scenario's, the name `<scenario>-<variant>`, no variants of its own.
pub fn variant_text(text: &str, variant: &Variant) -> Result<String, VariantTextError> {
    let mut base: toml::Table = toml::from_str(text).map_err(VariantTextError::Read)?;
    base.remove("variants");
    let name = base
        .get("name")
        .and_then(toml::Value::as_str)
        .unwrap_or("scenario")
        .to_owned();
    lay_over(&mut base, &variant.changes);
    base.insert(
        "name".into(),
        toml::Value::String(format!("{name}-{}", variant.name)),
    );
    Ok(toml::to_string(&base)?)
}

/// A variant's scenario text that could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VariantTextError {
    /// The scenario text is not TOML (its own parse says where).
    #[error("{}", .0.message())]
    Read(toml::de::Error),
    /// The merged table cannot be written back as TOML.
    #[error("{0}")]
    Write(#[from] toml::ser::Error),
}

/// Lays `changes` over `base`: tables key by key, anything else replaced.
fn lay_over(base: &mut toml::Table, changes: &toml::Table) {
    for (key, value) in changes {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(into)), toml::Value::Table(from)) => lay_over(into, from),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Variants that cannot be run side by side (each points at the `variants` key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariantsError {
    #[error("give at least two [[variants]] to compare")]
    TooFew,
    #[error("variant {0:?}: a name is letters, digits, '-' and '_'")]
    BadName(String),
    #[error("variant {0:?} is named twice")]
    NamedTwice(String),
    #[error("variant {name:?} changes {key:?}, which every variant shares")]
    ChangesShared { name: String, key: &'static str },
}

/// Whether the variants can be run side by side.
pub fn check(variants: &[Variant]) -> Result<(), VariantsError> {
    if variants.len() < 2 {
        return Err(VariantsError::TooFew);
    }
    for (index, variant) in variants.iter().enumerate() {
        let name_ok = !variant.name.is_empty()
            && variant
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(VariantsError::BadName(variant.name.clone()));
        }
        if variants[..index].iter().any(|v| v.name == variant.name) {
            return Err(VariantsError::NamedTwice(variant.name.clone()));
        }
        if let Some(key) = FIXED.iter().find(|key| variant.changes.contains_key(**key)) {
            return Err(VariantsError::ChangesShared {
                name: variant.name.clone(),
                key,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "name = \"modes\"\nseed = 3\n[devices]\ncount = 50\nheartbeat = \"8m\"\n\
        [[variants]]\nname = \"push\"\n\
        [[variants]]\nname = \"every-5m\"\n[variants.devices]\ndelivery = \"scheduled\"\nsync_interval = \"5m\"\n";

    fn variants() -> Vec<Variant> {
        crate::scenario::Scenario::parse(BASE, "modes.toml")
            .unwrap()
            .variants
    }

    #[test]
    fn a_variant_lays_its_keys_over_the_scenario_and_keeps_the_rest() {
        let variants = variants();
        assert_eq!(check(&variants), Ok(()));
        let text = variant_text(BASE, &variants[1]).unwrap();
        let scenario = crate::scenario::Scenario::parse(&text, "v").unwrap();
        assert_eq!(scenario.name, "modes-every-5m");
        assert_eq!(scenario.seed, 3);
        assert_eq!(scenario.devices.count, 50);
        assert_eq!(
            scenario.devices.delivery,
            crate::fleet::delivery::DeliveryMode::Scheduled
        );
        assert_eq!(scenario.devices.heartbeat.0.as_secs(), 480);
        assert!(scenario.variants.is_empty());
        let push =
            crate::scenario::Scenario::parse(&variant_text(BASE, &variants[0]).unwrap(), "v")
                .unwrap();
        assert_eq!(
            push.devices.delivery,
            crate::fleet::delivery::DeliveryMode::Push
        );
    }

    #[test]
    fn variants_are_named_once_each_and_keep_what_they_share() {
        let mut variants = variants();
        variants[1].name = "push".into();
        let twice = check(&variants).unwrap_err();
        assert_eq!(twice, VariantsError::NamedTwice("push".into()));
        assert_eq!(twice.to_string(), "variant \"push\" is named twice");
        let mut variants = self::variants();
        variants[1]
            .changes
            .insert("seed".into(), toml::Value::Integer(4));
        let shared = check(&variants).unwrap_err();
        assert!(matches!(
            shared,
            VariantsError::ChangesShared { key: "seed", .. }
        ));
        assert!(shared
            .to_string()
            .contains("changes \"seed\", which every variant shares"));
        assert_eq!(check(&variants[..1]), Err(VariantsError::TooFew));
        variants[0].name = "a b".into();
        assert_eq!(check(&variants), Err(VariantsError::BadName("a b".into())));
    }

    #[test]
    fn text_that_is_not_toml_is_a_read_error_in_toml_words() {
        let err = variant_text("name = ", &variants()[0]).unwrap_err();
        assert!(matches!(err, VariantTextError::Read(_)));
        assert!(!err.to_string().is_empty());
        assert!(!err.to_string().contains("line"), "{err}");
    }
}
