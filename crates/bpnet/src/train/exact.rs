//! `serde` helpers that keep every `f64` of a checkpoint exactly: a finite
//! value is written as a JSON number (shortest text that reads back to the
//! same bits; parsing is correctly rounded with serde_json's
//! `float_roundtrip` feature, which bpnet enables), a non-finite one as the
//! string `"NaN"`, `"inf"` or `"-inf"` (plain serde_json would write `null`,
//! which does not read back as an `f64`). Reading also accepts `null` for a
//! plain `f64` as NaN, as older checkpoints wrote it.
//!
//! Use with `#[serde(with = "crate::train::exact")]` on an `f64`, or
//! `exact::opt` on an `Option<f64>`.

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use std::fmt;

/// Writes `v` exactly (see the module docs).
pub(crate) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    match *v {
        v if v.is_finite() => s.serialize_f64(v),
        v if v.is_nan() => s.serialize_str("NaN"),
        v if v > 0.0 => s.serialize_str("inf"),
        _ => s.serialize_str("-inf"),
    }
}

/// Reads a value written by [`serialize`] (or `null`, as NaN).
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(ExactF64)
}

/// [`serialize`] and [`deserialize`] for `Option<f64>` (`null` is `None`).
pub(crate) mod opt {
    use super::*;

    /// Writes `None` as `null`, a value as [`super::serialize`] does.
    pub(crate) fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    /// Reads `null` as `None`, anything else as [`super::deserialize`] does.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        d.deserialize_option(OptF64)
    }

    struct OptF64;

    impl<'de> Visitor<'de> for OptF64 {
        type Value = Option<f64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number, \"NaN\", \"inf\", \"-inf\" or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

/// [`serialize`] and [`deserialize`] for a `(f64, usize)` pair, written as a
/// two-element array.
pub(crate) mod pair {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    struct Pair(#[serde(with = "super")] f64, usize);

    /// Writes `[value, count]`.
    pub(crate) fn serialize<S: Serializer>(v: &(f64, usize), s: S) -> Result<S::Ok, S::Error> {
        Pair(v.0, v.1).serialize(s)
    }

    /// Reads `[value, count]`.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(f64, usize), D::Error> {
        let Pair(v, n) = Pair::deserialize(d)?;
        Ok((v, n))
    }
}

struct ExactF64;

impl<'de> Visitor<'de> for ExactF64 {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, \"NaN\", \"inf\" or \"-inf\"")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        Ok(f64::NAN)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        match v {
            "NaN" => Ok(f64::NAN),
            "inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    struct Record {
        #[serde(with = "super")]
        x: f64,
        #[serde(with = "super::opt", default)]
        y: Option<f64>,
    }

    #[test]
    fn non_finite_values_and_old_nulls_read_back() {
        for x in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.1,
            f64::MIN_POSITIVE / 3.0,
        ] {
            for y in [None, Some(x)] {
                let text = serde_json::to_string(&Record { x, y }).unwrap();
                let back: Record = serde_json::from_str(&text).unwrap();
                assert_eq!(back.x.to_bits(), x.to_bits(), "{text}");
                assert_eq!(back.y.map(f64::to_bits), y.map(f64::to_bits), "{text}");
            }
        }
        // Older checkpoints wrote NaN as null, and had no optional field.
        let old: Record = serde_json::from_str(r#"{"x": null}"#).unwrap();
        assert!(old.x.is_nan() && old.y.is_none());
        let int: Record = serde_json::from_str(r#"{"x": 3, "y": -2}"#).unwrap();
        assert_eq!((int.x, int.y), (3.0, Some(-2.0)));
        assert!(serde_json::from_str::<Record>(r#"{"x": "nan"}"#).is_err());
    }
}
